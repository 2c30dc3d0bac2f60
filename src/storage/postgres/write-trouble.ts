/*
 * How the PostgreSQL store tells "the database cannot take writes now" (probe until it
 * works again) and "the database cannot serve now" (answer 503) from a refused statement
 * (a bug of ours: 500), and how to recognise a known client bug.
 */
import postgres from "postgres";

/** The `postgres` client's codes for a connection that was already closed when used. */
export const DEAD_CONNECTION_CODES = new Set(["CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED"]);

/*
 * Errors that say the database cannot take writes now: read-only (25006), out of disk
 * or memory (53), I/O and system errors (58), shutting down (57), connection trouble
 * (08), internal errors (XX) — as opposed to a refused request (a constraint, bad input).
 */
export function isWriteTrouble(error: unknown): boolean {
  if (!(error instanceof postgres.PostgresError)) return false;
  return error.code === "25006" || ["53", "58", "57", "08", "XX"].includes(error.code.slice(0, 2));
}

/** The client's and the socket's codes for a database that cannot be reached now. */
const UNREACHABLE_CODES = new Set([
  ...DEAD_CONNECTION_CODES,
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/*
 * The database's trouble, where retrying can work: the write trouble above, a
 * serialization failure or deadlock (40), a lock not available (55P03), or a database
 * that cannot be reached. A constraint, a syntax error or a missing column is not: our
 * statements and the schema disagree.
 */
export function isDatabaseTrouble(error: unknown): boolean {
  // The client's known bug can also surface inside a query (a write on a dropped socket): the connection is gone.
  if (isKnownClientWriteBug(error)) return true;
  if (error instanceof postgres.PostgresError) return isWriteTrouble(error) || error.code.startsWith("40") || error.code === "55P03";
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && UNREACHABLE_CODES.has(code);
}

/*
 * A known bug of the `postgres` client (porsager/postgres #1066, #1154, #1208; no fix
 * released as of 3.4.9): when the server goes away under load, a deferred write can run
 * after its socket was dropped and throw "Cannot read properties of null (reading
 * 'write')" from a timer, outside any call of ours. That write belongs to a connection
 * already being torn down (its queries fail and are retried by our callers), so the
 * error is harmless. Only this exact error from that file matches. The process-wide
 * handler that uses this lives with the process, not here (src/process-guards.ts).
 */
export function isKnownClientWriteBug(error: unknown): boolean {
  return (
    error instanceof TypeError &&
    error.message === "Cannot read properties of null (reading 'write')" &&
    /postgres[\\/]src[\\/]connection\.js/.test(error.stack ?? "")
  );
}
