/*
 * The `pg` phase: tailhook's ingest on SQLite against PostgreSQL, in the same run.
 * (a) one process on SQLite, (b) one process on PostgreSQL, (c) two processes on the
 * same PostgreSQL database and schema, the connections split over both and loaded at
 * the same time (req/s summed, latencies merged). Each run gets a fresh schema,
 * bench_<random>, dropped at the end, also when the phase fails.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { startTailhook } from "./children.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import { summarize } from "./stats.js";

export interface PgIngestOptions {
  url: string;
  body: string;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  progress(message: string): void;
}

export interface PgIngestResult {
  schema: string;
  sqlite: LoadResult;
  pgOne: LoadResult;
  /** Both processes' loads, then their sum (req/s) and merged latencies. */
  pgTwo: { parts: LoadResult[]; total: LoadResult };
}

/** The database URL for the phase, or undefined when it is not enabled. */
export function pgBenchUrl(): string | undefined {
  return process.env.BENCH_PG_URL || process.env.TAILHOOK_TEST_PG_URL || undefined;
}

/** Shows a URL without its password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}

function combine(parts: LoadResult[]): LoadResult {
  const latencies = parts.flatMap((part) => part.latencies);
  const { p50, p99 } = summarize(latencies);
  return {
    requestsPerSecond: parts.reduce((sum, part) => sum + part.requestsPerSecond, 0),
    p50,
    p99,
    non2xx: parts.reduce((sum, part) => sum + part.non2xx, 0),
    errors: parts.reduce((sum, part) => sum + part.errors, 0),
    latencies,
  };
}

export async function measurePostgresIngest(options: PgIngestOptions): Promise<PgIngestResult> {
  const { url, body, connections, warmupSeconds, seconds, progress } = options;
  const load = async (target: string, conns = connections): Promise<LoadResult> => {
    await runLoad({ url: target, body, connections: conns, seconds: warmupSeconds });
    return runLoad({ url: target, body, connections: conns, seconds });
  };
  const schema = `bench_${randomBytes(6).toString("hex")}`;
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    progress(`pg: tailhook on SQLite, ${warmupSeconds} s warm-up + ${seconds} s`);
    const sqliteServer = await startTailhook({ name: "tailhook-sqlite" });
    const sqlite = await load((await sqliteServer.createInbox()).ingestUrl);
    await sqliteServer.stop();

    progress(`pg: tailhook on PostgreSQL (schema ${schema}), one process, ${warmupSeconds} s warm-up + ${seconds} s`);
    const adminToken = `bench_${randomBytes(24).toString("hex")}`;
    const one = await startTailhook({ db: url, schema, adminToken, name: "tailhook-pg-1" });
    const pgOne = await load((await one.createInbox()).ingestUrl);

    progress(`pg: two tailhook processes on the same schema, ${connections / 2} connections each, at the same time`);
    const two = await startTailhook({ db: url, schema, adminToken, name: "tailhook-pg-2" });
    // One inbox, created through the first process, posted to through both.
    const inbox = await one.createInbox();
    const path = new URL(inbox.ingestUrl).pathname;
    const targets = [new URL(path, one.url).toString(), new URL(path, two.url).toString()];
    const half = Math.floor(connections / 2);
    const parts = await Promise.all(targets.map((target, index) => load(target, index === 0 ? half : connections - half)));
    await Promise.all([one.stop(), two.stop()]);
    return { schema, sqlite, pgOne, pgTwo: { parts, total: combine(parts) } };
  } finally {
    try {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } catch (error) {
      process.stderr.write(`bench: could not drop schema ${schema}: ${String(error)}\n`);
    }
    await sql.end({ timeout: 5 });
  }
}
