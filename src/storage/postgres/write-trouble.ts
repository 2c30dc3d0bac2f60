/*
 * How the PostgreSQL store tells "the database cannot take writes now" (answer 503, probe
 * until it works again) from a refused request, and the guard for a known client bug.
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
 * Workaround for a known bug of the `postgres` client (porsager/postgres #1066, #1154,
 * #1208; unreleased fixes): when the server goes away under load, a deferred write can
 * run after its socket was dropped and throw "Cannot read properties of null (reading
 * 'write')" from a timer, which would kill the process. That write belongs to a
 * connection already being torn down (its queries fail and are retried by our callers),
 * so only this exact error from that file is swallowed; anything else still crashes.
 */
let clientBugGuardInstalled = false;
export function guardAgainstClientWriteBug(): void {
  if (clientBugGuardInstalled) return;
  clientBugGuardInstalled = true;
  process.on("uncaughtException", (error) => {
    const isClientBug =
      error instanceof TypeError &&
      error.message === "Cannot read properties of null (reading 'write')" &&
      /postgres[\\/]src[\\/]connection\.js/.test(error.stack ?? "");
    if (isClientBug) return;
    throw error;
  });
}
