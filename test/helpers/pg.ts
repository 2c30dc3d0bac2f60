/*
 * PostgreSQL for tests: a fresh database per test on the server TAILHOOK_TEST_PG_URL
 * names (notifications are per database, so nothing from other test files reaches
 * it), and, for outage tests, a private throwaway PostgreSQL server of the locally
 * installed version that a test may stop, start and restart at will — the shared
 * server, which other test files and other people use meanwhile, is never touched.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { freePort } from "./processes.js";

const run = promisify(execFile);

export function pgTestUrl(): string {
  const url = process.env.TAILHOOK_TEST_PG_URL;
  if (!url) throw new Error("TAILHOOK_TEST_PG_URL is not set");
  return url;
}

/** Runs `fn` on a short-lived admin connection to `baseUrl`'s database. */
async function withAdmin<T>(baseUrl: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(baseUrl, { max: 1, onnotice: () => undefined, connect_timeout: 10 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 2 });
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  /** The server's URL it was made on (for dropDatabase). */
  baseUrl: string;
}

/** Creates an empty database on the server of `baseUrl` (the test server by default). */
export async function createDatabase(prefix = "th_test", baseUrl = pgTestUrl()): Promise<TestDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
  await withAdmin(baseUrl, (sql) => sql.unsafe(`CREATE DATABASE ${name}`));
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), baseUrl };
}

export async function dropDatabase(database: TestDatabase): Promise<void> {
  await withAdmin(database.baseUrl, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${database.name} WITH (FORCE)`));
}

/** True when a server answers on host:port (pg_isready). */
export function pgIsReady(host: string, port: number): boolean {
  return spawnSync("pg_isready", ["-q", "-h", host, "-p", String(port)]).status === 0;
}

/** The binaries of the newest locally installed PostgreSQL (Debian layout), if any. */
function postgresBinaries(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((entry) => /^\d+$/.test(entry) && existsSync(join(root, entry, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(root, versions[0], "bin");
}

export interface PrivateCluster {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  isReady(): boolean;
  /** pg_ctl stop -m fast: clients are disconnected, nothing new is accepted. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** pg_ctl restart -m fast. */
  restart(): Promise<void>;
  /** Stops it (immediately) and removes its files. */
  destroy(): Promise<void>;
  /** The server's log, for failure messages. */
  log(): string;
}

/**
 * initdb and start a PostgreSQL server of our own on a free port, in a temp folder,
 * trust auth for user postgres. As root, the server runs as the postgres user.
 * `fsync: false` starts it unsafe on purpose (to test that tailhook refuses it).
 */
export async function startPrivateCluster(settings: { fsync?: boolean } = {}): Promise<PrivateCluster> {
  const bin = postgresBinaries();
  if (!bin) throw new Error("no local PostgreSQL installation under /usr/lib/postgresql for a private test server");
  const dir = mkdtempSync(join(tmpdir(), "tailhook-pg-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(spawnSync("id", ["-u", "postgres"]).stdout.toString().trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"]).stdout.toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const logFile = join(dir, "server.log");
  const port = await freePort();
  const exec = (tool: string, args: string[]) =>
    asRoot
      ? run("runuser", ["-u", "postgres", "--", join(bin, tool), ...args], { timeout: 60_000 })
      : run(join(bin, tool), args, { timeout: 60_000 });
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses=127.0.0.1",
    "-c shared_buffers=16MB",
    "-c max_connections=60",
    `-c fsync=${settings.fsync === false ? "off" : "on"}`,
  ].join(" ");
  const ctl = (action: string, extra: string[] = []) => exec("pg_ctl", [action, "-w", "-t", "60", "-D", data, "-l", logFile, ...extra]);

  await exec("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
  await ctl("start", ["-o", options]);
  const cluster: PrivateCluster = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    isReady: () => pgIsReady("127.0.0.1", port),
    stop: async () => void (await ctl("stop", ["-m", "fast"])),
    start: async () => void (await ctl("start", ["-o", options])),
    restart: async () => void (await ctl("restart", ["-m", "fast", "-o", options])),
    async destroy() {
      await ctl("stop", ["-m", "immediate"]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
    log() {
      try {
        return readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
  };
  return cluster;
}
