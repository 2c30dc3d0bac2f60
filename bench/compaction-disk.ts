/*
 * The compaction phase: disk use of a compacted state stream against the size of one
 * snapshot. A fresh SQLite server (its prune, and so compaction, every second) takes
 * `updates` State Protocol updates over `keys` keys (upserts of ~100-byte values, in
 * JSON-array appends of 1000 from 4 concurrent writers) on a stream created with
 * `Stream-Compact: key-frame` (the default policy: H trails the tail by 1000).
 * Then it waits until compaction has caught up (a read from -1 holds at most keys +
 * lag messages), reads one whole snapshot (the bytes of its pages), stops the server
 * and measures the database: the file (after the final checkpoint) and the pages in
 * use (file minus free pages, which SQLite reuses for new rows; VACUUM would give them
 * back to the file system). The target compares the pages in use with the snapshot.
 */
import { appendChanges } from "./state-appends.js";
import Database from "better-sqlite3";
import { statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startTailhook } from "./children.js";

export interface CompactionDiskOptions {
  updates: number;
  keys: number;
  adminToken: string;
  progress: (message: string) => void;
}

export interface CompactionDiskResult {
  updates: number;
  keys: number;
  ingestSeconds: number;
  /** Seconds from the last append until compaction had caught up (NaN: it did not within the wait). */
  settleSeconds: number;
  retainedMessages: number;
  snapshotBytes: number;
  fileBytes: number;
  usedBytes: number;
}

const DEFAULT_LAG = 1000;
const SETTLE_TIMEOUT_MS = 300_000;

function value(update: number): string {
  return JSON.stringify({
    version: update,
    status: update % 3 === 0 ? "active" : "idle",
    note: "x".repeat(48),
    at: 1_719_000_000 + update,
  });
}

export async function measureCompactionDisk(options: CompactionDiskOptions): Promise<CompactionDiskResult> {
  const { updates, keys, adminToken, progress } = options;
  const server = await startTailhook({ adminToken, name: "compaction", env: { TAILHOOK_PRUNE_INTERVAL_MS: "1000" } });
  const auth = { authorization: `Bearer ${adminToken}` };
  const streamUrl = `${server.url}/v1/stream/bench/compacted`;
  try {
    const created = await fetch(streamUrl, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json", "stream-state": "v1", "stream-compact": "key-frame" },
    });
    if (created.status !== 201) throw new Error(`creating the stream: ${created.status} ${await created.text()}`);

    progress(`compaction: ${updates.toLocaleString("en-US")} updates over ${keys.toLocaleString("en-US")} keys`);
    const started = performance.now();
    await appendChanges(
      streamUrl,
      auth,
      updates,
      (update) => `{"type":"item","key":"k${update % keys}","value":${value(update)},"headers":{"operation":"upsert"}}`,
    );
    const ingestSeconds = (performance.now() - started) / 1000;

    const settled = performance.now();
    let retained = Number.POSITIVE_INFINITY;
    while (performance.now() - settled < SETTLE_TIMEOUT_MS) {
      retained = await countFromStart(streamUrl, auth);
      if (retained <= keys + DEFAULT_LAG) break;
      await sleep(500);
    }
    const settleSeconds = retained <= keys + DEFAULT_LAG ? (performance.now() - settled) / 1000 : Number.NaN;
    const snapshotBytes = await snapshotSize(streamUrl, auth);
    await server.halt();
    const file = join(server.dataDir, "tailhook.db");
    const db = new Database(file, { readonly: true });
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    const pages = db.pragma("page_count", { simple: true }) as number;
    const free = db.pragma("freelist_count", { simple: true }) as number;
    db.close();
    return {
      updates,
      keys,
      ingestSeconds,
      settleSeconds,
      retainedMessages: retained,
      snapshotBytes,
      fileBytes: statSync(file).size,
      usedBytes: (pages - free) * pageSize,
    };
  } finally {
    await server.stop();
  }
}

/** Messages a read from -1 finds, page by page. */
async function countFromStart(streamUrl: string, headers: Record<string, string>): Promise<number> {
  let count = 0;
  for (let offset = "-1"; ;) {
    const response = await fetch(`${streamUrl}?offset=${offset}`, { headers });
    if (response.status !== 200) return Number.POSITIVE_INFINITY; // a pass moved H under the read: count again
    count += ((await response.json()) as unknown[]).length;
    offset = response.headers.get("stream-next-offset")!;
    if (response.headers.get("stream-up-to-date") === "true") return count;
  }
}

/** The bytes of one whole snapshot, every page's body. */
async function snapshotSize(streamUrl: string, headers: Record<string, string>): Promise<number> {
  let bytes = 0;
  for (let offset = "snapshot"; ;) {
    const response = await fetch(`${streamUrl}?offset=${encodeURIComponent(offset)}`, { headers });
    if (response.status !== 200) throw new Error(`snapshot read: ${response.status} ${await response.text()}`);
    bytes += (await response.arrayBuffer()).byteLength;
    offset = response.headers.get("stream-next-offset")!;
    if (!offset.startsWith("snapshot:")) return bytes;
  }
}
