/*
 * The snapshot phase: how fast a consumer gets the state of 100,000 keys from a key
 * frame (offset=snapshot, entities/s) against reading the same 100,000 inserts as a
 * log from -1 (messages/s), on one fresh SQLite server. The stream holds one insert
 * per key, so both reads carry the same values and the ratio is the cost of the
 * snapshot's index walk against a sequential log read. Each read runs in a reader
 * child process (bench/snapshot-reader.ts); the two kinds take turns, and each figure
 * is the median of its reads.
 */
import { appendChanges } from "./state-appends.js";
import { fork } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { startTailhook } from "./children.js";
import { cpuSeconds } from "./rss.js";
import type { SnapshotReadRequest, SnapshotReadResult } from "./snapshot-reader.js";

export interface SnapshotReadOptions {
  keys: number;
  /** Reads of each kind, taken in turns. */
  reads: number;
  adminToken: string;
  progress: (message: string) => void;
}

export interface TimedRead extends SnapshotReadResult {
  itemsPerSecond: number;
  /** The server's CPU time over the read, µs per item. */
  serverCpuUs: number;
}

export interface SnapshotPhaseResult {
  keys: number;
  fillSeconds: number;
  snapshots: TimedRead[];
  logs: TimedRead[];
}

/** A ~100-byte value, like the compaction phase's. */
function value(key: number): string {
  return JSON.stringify({ version: key, status: key % 3 === 0 ? "active" : "idle", note: "x".repeat(48), at: 1_719_000_000 + key });
}

function readInChild(request: SnapshotReadRequest): Promise<SnapshotReadResult> {
  const script = fileURLToPath(new URL("./snapshot-reader.js", import.meta.url));
  const child = fork(script, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (reply: { result?: SnapshotReadResult; error?: string }) => {
      child.kill();
      if (reply.result) resolve(reply.result);
      else reject(new Error(`snapshot reader: ${reply.error}`));
    });
    child.once("exit", (code) => reject(new Error(`snapshot reader exited (${code}) without a result`)));
    child.send(request);
  });
}

export function medianRate(reads: TimedRead[]): number {
  const rates = reads.map((read) => read.itemsPerSecond).sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)] ?? Number.NaN;
}

export async function measureSnapshotRead(options: SnapshotReadOptions): Promise<SnapshotPhaseResult> {
  const { keys, reads, adminToken, progress } = options;
  const server = await startTailhook({ adminToken, name: "snapshot" });
  const auth = { authorization: `Bearer ${adminToken}` };
  const streamUrl = `${server.url}/v1/stream/bench/state`;
  try {
    const created = await fetch(streamUrl, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json", "stream-state": "v1" },
    });
    if (created.status !== 201) throw new Error(`creating the stream: ${created.status} ${await created.text()}`);

    progress(`snapshot: inserting ${keys.toLocaleString("en-US")} keys`);
    const started = performance.now();
    await appendChanges(
      streamUrl,
      auth,
      keys,
      (key) => `{"type":"item","key":"k${String(key).padStart(6, "0")}","value":${value(key)},"headers":{"operation":"insert"}}`,
    );
    const fillSeconds = (performance.now() - started) / 1000;
    await sleep(1000); // let the checkpoint thread catch up with the fill, as the catch-up phase does

    const timed = async (mode: SnapshotReadRequest["mode"]): Promise<TimedRead> => {
      const cpuBefore = cpuSeconds(server.pid);
      const result = await readInChild({ streamUrl, adminToken, mode });
      const serverCpuUs = ((cpuSeconds(server.pid) - cpuBefore) * 1e6) / result.items;
      return { ...result, itemsPerSecond: result.items / result.seconds, serverCpuUs };
    };
    const snapshots: TimedRead[] = [];
    const logs: TimedRead[] = [];
    for (let read = 0; read < reads; read++) {
      progress(`snapshot: read ${read + 1} of ${reads}, from -1 then offset=snapshot`);
      logs.push(await timed("log"));
      snapshots.push(await timed("snapshot"));
    }
    return { keys, fillSeconds, snapshots, logs };
  } finally {
    await server.stop();
  }
}
