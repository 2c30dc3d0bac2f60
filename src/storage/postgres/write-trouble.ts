/*
 * How the PostgreSQL store tells "the database cannot take writes now" (answer 503, probe
 * until it works again) from a refused request, and how to recognise a known client bug.
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
