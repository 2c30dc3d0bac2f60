/*
 * The servers under test run as child processes, apart from the load generator. This
 * file starts them (and the forward phase's target and `tailhook forward` children),
 * waits for their "listening on" line, and makes sure they are stopped and their temp
 * data folders removed, also when the benchmark fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;

export interface Server {
  name: string;
  url: string;
  stop(): Promise<void>;
}

export interface Inbox {
  id: string;
  ingestUrl: string;
  streamUrl: string;
  token: string;
}

export interface Tailhook extends Server {
  pid: number;
  /** The data folder (removed by stop()). */
  dataDir: string;
  /** Stops the server and keeps its data folder (stop() then only removes it). */
  halt(): Promise<void>;
  createInbox(settings?: Record<string, unknown>): Promise<Inbox>;
}

const running = new Set<ChildProcess>();
const stopping = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Extra node flags for the server children, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof". */
function nodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function stopChild(child: ChildProcess): Promise<void> {
  stopping.add(child);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited(child);
    clearTimeout(timer);
  }
  running.delete(child);
  stopping.delete(child);
}

/**
 * Starts `node <args>` with stdout and stderr piped (and an IPC channel if asked); stopAll
 * stops it. BENCH_NODE_ARGS go to servers, not to load generators and readers (loadChild).
 */
export function spawnNode(args: string[], env: NodeJS.ProcessEnv, ipc = false, loadChild = false): ChildProcess {
  const child = spawn(process.execPath, [...(loadChild ? [] : nodeArgs()), ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe", ...(ipc ? ["ipc" as const] : [])],
  });
  running.add(child);
  return child;
}

/** Spawns a server, waits for its "listening on <url>" line, then relays what it prints. */
export async function startChild(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ipc = false,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnNode(args, env, ipc);
  let output = "";
  let ready = false;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      // Once the server is up, anything it prints (warnings, errors) is worth seeing.
      if (ready) process.stderr.write(text.replace(/^(?=.)/gm, `[${name}] `));
      else output += text;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (!ready && match) {
        ready = true;
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${name} exited (${signal ?? code}) before listening:\n${output}`));
      else if (!stopping.has(child)) process.stderr.write(`[${name}] exited unexpectedly (${signal ?? code})\n`);
    });
  }).catch(async (error: unknown) => {
    await stopChild(child);
    throw error;
  });
  return { child, url };
}

export async function startBare(): Promise<Server & { pid: number }> {
  const script = fileURLToPath(new URL("./bare-server.js", import.meta.url));
  const { child, url } = await startChild("bare", [script], process.env);
  return { name: "bare node:http", url, pid: child.pid!, stop: () => stopChild(child) };
}

/** The relay that stores nothing (bench/relay-server.ts): the baseline of the live and fanout phases. */
export async function startRelay(): Promise<Server & { pid: number }> {
  const script = fileURLToPath(new URL("./relay-server.js", import.meta.url));
  const { child, url } = await startChild("relay", [script], process.env);
  return { name: "relay (stores nothing)", url, pid: child.pid!, stop: () => stopChild(child) };
}

/** The `tailhook forward` target (bench/forward-target.ts); it reports over IPC. */
export async function startForwardTarget(): Promise<Server & { child: ChildProcess }> {
  const script = fileURLToPath(new URL("./forward-target.js", import.meta.url));
  const { child, url } = await startChild("forward-target", [script], process.env, true);
  return { name: "forward target", url, child, stop: () => stopChild(child) };
}

export interface TailhookOptions {
  /** postgres://… to run on PostgreSQL (`--db`); SQLite in the data folder when absent. */
  db?: string;
  /** TAILHOOK_DATABASE_SCHEMA, with db. */
  schema?: string;
  /** Shared by processes on one database; a fresh random one when absent. */
  adminToken?: string;
  /** Name in the child's log prefix. */
  name?: string;
  /** More `serve` flags, e.g. --open. */
  args?: string[];
  /** More environment for the child, e.g. TAILHOOK_PRUNE_INTERVAL_MS. */
  env?: NodeJS.ProcessEnv;
}

export async function startTailhook(options: TailhookOptions = {}): Promise<Tailhook> {
  const main = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
  const dataDir = mkdtempSync(join(tmpdir(), "tailhook-bench-"));
  tempDirs.add(dataDir);
  const adminToken = options.adminToken ?? `bench_${randomBytes(24).toString("hex")}`;
  const name = options.name ?? "tailhook";
  const env: NodeJS.ProcessEnv = { ...process.env, TAILHOOK_ADMIN_TOKEN: adminToken, TAILHOOK_LOG_LEVEL: "warn", ...options.env };
  // The backend is chosen here, never inherited from the bench's own environment.
  delete env.DATABASE_URL;
  delete env.TAILHOOK_DATABASE_URL;
  delete env.TAILHOOK_DATABASE_SCHEMA;
  const args = [main, "serve", "--port", "0", "--data", dataDir, ...(options.args ?? [])];
  if (options.db !== undefined) {
    args.push("--db", options.db);
    if (options.schema !== undefined) env.TAILHOOK_DATABASE_SCHEMA = options.schema;
  }
  const { child, url } = await startChild(name, args, env);
  return {
    name,
    url,
    pid: child.pid!,
    dataDir,
    halt: () => stopChild(child),
    async stop() {
      await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
      tempDirs.delete(dataDir);
    },
    async createInbox(settings?: Record<string, unknown>) {
      const response = await fetch(`${url}/api/inboxes`, {
        method: "POST",
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(settings ? { settings } : {}),
      });
      if (response.status !== 201) throw new Error(`creating an inbox: ${response.status} ${await response.text()}`);
      return (await response.json()) as Inbox;
    },
  };
}

/** Stops whatever is still running and removes the temp folders. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map(stopChild));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

// Last resort if the benchmark exits without stopAll (e.g. an uncaught exception).
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
