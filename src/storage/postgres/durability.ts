/*
 * A 2xx promises the event is on disk; on PostgreSQL that rests on two server settings.
 * synchronous_commit we set ourselves for every tailhook session (a startup parameter,
 * which wins over the database's and role's defaults); fsync only the operator can
 * change, so tailhook refuses to start without it rather than acknowledge webhooks
 * that a power loss would take back.
 */
import type { Sql } from "postgres";

/** Startup parameters for every session that writes events. */
export const DURABLE_SESSION_PARAMETERS = { synchronous_commit: "on" } as const;

export interface ServerDurability {
  /** SHOW fsync: "on" or "off". */
  fsync: string;
  /** SHOW synchronous_commit in our session: on, local, remote_write, remote_apply or off. */
  synchronousCommit: string;
}

export async function readServerDurability(sql: Sql): Promise<ServerDurability> {
  const [row] = await sql<Array<{ fsync: string; synchronous_commit: string }>>`
    SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit`;
  return { fsync: row!.fsync, synchronousCommit: row!.synchronous_commit };
}

/** Throws, saying what to change, when a committed write could still be lost on a crash. */
export function checkServerDurability(settings: ServerDurability): void {
  if (settings.fsync !== "on") {
    throw new Error(
      "PostgreSQL runs with fsync=off: a crash or power loss can lose webhooks tailhook has already acknowledged, " +
        "so tailhook will not start. Set fsync = on in postgresql.conf and reload the server (SELECT pg_reload_conf()).",
    );
  }
  if (settings.synchronousCommit === "off") {
    throw new Error(
      "tailhook's PostgreSQL session runs with synchronous_commit=off although tailhook asked for on " +
        "(a connection pooler may drop startup parameters): acknowledged webhooks could be lost, so tailhook will not start.",
    );
  }
}
