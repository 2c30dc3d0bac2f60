/*
 * Load generators and readers as child processes (bench/pace-sender-child.ts,
 * bench/sse-readers-child.ts, bench/disk-sync-child.ts), driven over IPC: a sender
 * shares no event loop with a reader, and neither with the bench process.
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { spawnNode, stopChild } from "./children.js";
import type { SenderChildArgs, SenderChildReport } from "./pace-sender-child.js";
import type { ReadersChildArgs, ReadersChildMessage, ReceivedRow } from "./sse-readers-child.js";

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

function relayOutput(name: string, child: ChildProcess): void {
  const relay = (chunk: Buffer) => process.stderr.write(chunk.toString("utf8").replace(/^(?=.)/gm, `[${name}] `));
  child.stdout!.on("data", relay);
  child.stderr!.on("data", relay);
}

/** The next IPC message of this type; rejects if the child exits first. */
function nextMessage<T extends { type: string }>(child: ChildProcess, type: T["type"], name: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; message?: string }) => {
      if (message.type === type) {
        cleanup();
        resolve(message as T);
      } else if (message.type === "failed") {
        cleanup();
        reject(new Error(`${name}: ${message.message}`));
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`${name} exited (${signal ?? code}) before sending ${type}`));
    };
    const cleanup = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

export interface ReadersChild {
  pid: number;
  ready: Promise<void>;
  report(): Promise<{ rows: ReceivedRow[]; duplicates: number; closed: number }>;
  stop(): Promise<void>;
}

export function startReaders(args: ReadersChildArgs, name = "readers"): ReadersChild {
  const child = spawnNode([script("sse-readers-child"), JSON.stringify(args)], process.env, true, true);
  relayOutput(name, child);
  const ready = nextMessage<{ type: "ready" }>(child, "ready", name).then(() => undefined);
  ready.catch(() => {}); // awaited by the caller; this keeps an early exit from being unhandled meanwhile
  return {
    pid: child.pid!,
    ready,
    async report() {
      const reply = nextMessage<Extract<ReadersChildMessage, { type: "report" }>>(child, "report", name);
      child.send({ type: "report" });
      return reply;
    },
    async stop() {
      if (child.connected) child.send({ type: "stop" });
      await stopChild(child);
    },
  };
}

/** Runs the paced sender child to its end and returns its report. */
export async function runSender(args: SenderChildArgs, name = "sender"): Promise<SenderChildReport> {
  const child = spawnNode([script("pace-sender-child"), JSON.stringify(args)], process.env, true, true);
  relayOutput(name, child);
  try {
    return await nextMessage<SenderChildReport>(child, "done", name);
  } finally {
    await stopChild(child);
  }
}

export interface DiskSyncResult {
  mibPerSecond: number;
  chunks: number;
  /** One write + fdatasync of a chunk, ms. */
  syncP50Ms: number;
  syncP99Ms: number;
}

/** Runs the disk baseline child (bench/disk-sync-child.ts) in `dir`: its MiB/s and sync latency. */
export async function runDiskSync(dir: string, seconds: number, chunkBytes: number): Promise<DiskSyncResult> {
  const child = spawnNode([script("disk-sync-child"), JSON.stringify({ dir, seconds, chunkBytes })], process.env, true, true);
  relayOutput("disk", child);
  try {
    return await nextMessage<DiskSyncResult & { type: "done" }>(child, "done", "disk");
  } finally {
    await stopChild(child);
  }
}
