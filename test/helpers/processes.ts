/*
 * Real child processes for end-to-end tests: `tailhook serve` on a data folder, and
 * CLI commands, each with its own environment (no TAILHOOK_* or HOME leaking in from
 * the developer's shell). Every child started here is remembered, so a test's
 * afterEach/afterAll can kill whatever is left with killAllChildren().
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const CLI_PATH = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

const children = new Set<ChildProcess>();

export function tempDir(prefix = "tailhook-proc-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** process.env without anything tailhook or the config lookup would pick up. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith("TAILHOOK_") || name === "HOME" || name === "XDG_CONFIG_HOME") continue;
    if (name.startsWith("VITEST") || name === "NODE_OPTIONS") continue;
    env[name] = value;
  }
  return { ...env, TAILHOOK_LOG_LEVEL: "warn", ...extra };
}

/** A port nobody listens on right now (the OS picks it, we release it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Collects a stream's output as text and as complete lines, and lets tests wait on it. */
export class LineCollector {
  text = "";
  readonly lines: string[] = [];
  private partial = "";
  private readonly listeners = new Set<() => void>();
  /** More to show when a wait times out (e.g. the process's stderr and exit). */
  context: () => string = () => "";

  constructor(stream: NodeJS.ReadableStream | null) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      this.text += chunk;
      const parts = (this.partial + chunk).split("\n");
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      for (const listener of [...this.listeners]) listener();
    });
  }

  /** Resolves with the lines once `predicate` holds; rejects with what was seen on timeout. */
  waitFor(predicate: (lines: string[]) => boolean, timeoutMs = 10_000, what = "expected output"): Promise<string[]> {
    if (predicate(this.lines)) return Promise.resolve(this.lines);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this.lines)) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(this.lines);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got:\n${this.text.slice(-4000)}${this.context()}`));
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  waitForLines(count: number, timeoutMs = 10_000): Promise<string[]> {
    return this.waitFor((lines) => lines.length >= count, timeoutMs, `${count} lines`);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  process: ChildProcess;
  stdout: LineCollector;
  stderr: LineCollector;
  /** Settles when the process has exited (never rejects). */
  exited: Promise<Exit>;
  /** Sends `signal` (unless it already exited) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<Exit>;
  readonly running: boolean;
}

export function spawnNode(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Child {
  const child = spawn(process.execPath, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const stdout = new LineCollector(child.stdout);
  const stderr = new LineCollector(child.stderr);
  let exit: Exit | undefined;
  const describe = (name: string, other: LineCollector) => () =>
    `\n[${exit ? `exited ${exit.code ?? exit.signal}` : "still running"}; ${name}:]\n${other.text.slice(-4000)}`;
  stdout.context = describe("stderr", stderr);
  stderr.context = describe("stdout", stdout);
  const exited = new Promise<Exit>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      children.delete(child);
    });
    // "close" comes after the pipes are drained, so stdout/stderr are complete by then.
    child.once("close", (code, signal) => resolve(exit ?? { code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  return {
    process: child,
    stdout,
    stderr,
    exited,
    get running() {
      return exit === undefined;
    },
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      if (exit === undefined) child.kill(signal);
      return exited;
    },
  };
}

/** Kills every child still running (for afterEach/afterAll) and waits until they are gone. */
export async function killAllChildren(): Promise<void> {
  const exits = [...children].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  );
  await Promise.all(exits);
  children.clear();
}

export interface ServerProcess extends Child {
  url: string;
  port: number;
  dataDir: string;
  adminToken: string;
}

const LISTENING = /tailhook: listening on (http:\/\/[^\s]+) \(data in /;

/** Starts `tailhook serve` and resolves once it printed its listening line. */
export async function startServerProcess(
  options: { dataDir?: string; port?: number; args?: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? tempDir("tailhook-data-");
  const args = [CLI_PATH, "serve", "--port", String(options.port ?? 0), "--data", dataDir, ...(options.args ?? [])];
  const child = spawnNode(args, cleanEnv(options.env));
  const started = child.stderr.waitFor(
    (lines) => lines.some((line) => LISTENING.test(line)),
    options.timeoutMs ?? 15_000,
    "the listening line",
  );
  const url = await Promise.race([
    started.then((lines) => LISTENING.exec(lines.find((line) => LISTENING.test(line))!)![1]!),
    child.exited.then((exit) => {
      throw new Error(`server exited early (${exit.code ?? exit.signal}):\n${child.stderr.text}`);
    }),
  ]).catch(async (error: unknown) => {
    await child.kill();
    throw error;
  });
  const adminToken = options.env?.TAILHOOK_ADMIN_TOKEN ?? readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  return Object.assign(child, { url, port: Number(new URL(url).port), dataDir, adminToken });
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
  lines: string[];
  errorLines: string[];
  ms: number;
}

/** Runs a CLI command to completion (killed after timeoutMs), in the environment's HOME. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<CliResult> {
  const started = Date.now();
  const child = spawnNode([CLI_PATH, ...args], env, env.HOME);
  const timer = setTimeout(() => void child.kill(), timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return {
    ...exit,
    stdout: child.stdout.text,
    stderr: child.stderr.text,
    lines: child.stdout.text.split("\n").filter((line) => line !== ""),
    errorLines: child.stderr.text.split("\n").filter((line) => line !== ""),
    ms: Date.now() - started,
  };
}

/** Starts a long-running CLI command (tail, wait) and returns at once. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): Child {
  return spawnNode([CLI_PATH, ...args], env, env.HOME);
}

/**
 * An environment for CLI children with its own empty HOME (also their working folder,
 * so no ./tailhook-data is found) and XDG_CONFIG_HOME inside it.
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv & { HOME: string; XDG_CONFIG_HOME: string } {
  const home = tempDir("tailhook-home-");
  return { ...cleanEnv(), HOME: home, XDG_CONFIG_HOME: join(home, ".config"), ...extra } as NodeJS.ProcessEnv & {
    HOME: string;
    XDG_CONFIG_HOME: string;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True when process `pid` has an established TCP connection to 127.0.0.1:`port`
 * (Linux: its socket fds matched against /proc/net/tcp). Lets a test know that a CLI
 * child is connected, e.g. sitting in a long-poll, without it having printed anything.
 */
export function hasConnectionTo(pid: number, port: number): boolean {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((inode): inode is string => inode !== undefined),
    );
  } catch {
    return false;
  }
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let rows: string[];
    try {
      rows = readFileSync(table, "utf8").split("\n").slice(1);
    } catch {
      continue;
    }
    for (const row of rows) {
      const columns = row.trim().split(/\s+/);
      const remote = columns[2];
      if (!remote || columns[3] !== "01" || !inodes.has(columns[9] ?? "")) continue;
      if (parseInt(remote.split(":")[1] ?? "", 16) === port) return true;
    }
  }
  return false;
}

/** Waits until `pid` is connected to `port` (see hasConnectionTo). */
export async function waitForConnection(pid: number, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!hasConnectionTo(pid, port)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not connect to port ${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Creates an inbox on a server child with its admin token. */
export async function createInbox(server: ServerProcess): Promise<{ id: string; token: string }> {
  const response = await fetch(`${server.url}/api/inboxes`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
    body: "{}",
  });
  if (response.status !== 201) throw new Error(`create inbox: ${response.status} ${await response.text()}`);
  return (await response.json()) as { id: string; token: string };
}
