/*
 * The two Durable Streams servers of the `ds` phase, as child processes started
 * through children.ts (so stopAll stops them too): tailhook with `serve --open` (no
 * token for general streams, which live at /v1/stream/<path>) and the reference
 * server (bench/ds-reference-server.ts, file-backed store). Also the few plain
 * protocol requests the phase makes: create a JSON stream, read its tail offset, and
 * count its messages with catch-up reads.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { startChild, startTailhook, stopChild } from "./children.js";

export type DsServerKind = "tailhook" | "reference";

export interface DsServer {
  kind: DsServerKind;
  name: string;
  pid: number;
  /** The URL of the stream called `name` (not created yet). */
  streamUrl(name: string): string;
  stop(): Promise<void>;
}

const tempDirs = new Set<string>();
process.once("exit", () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export async function startDsTailhook(): Promise<DsServer> {
  const tailhook = await startTailhook({ args: ["--open"] });
  return {
    kind: "tailhook",
    name: "tailhook",
    pid: tailhook.pid,
    streamUrl: (name) => `${tailhook.url}/v1/stream/bench/${encodeURIComponent(name)}`,
    stop: () => tailhook.stop(),
  };
}

export async function startDsReference(): Promise<DsServer> {
  const script = fileURLToPath(new URL("./ds-reference-server.js", import.meta.url));
  const dataDir = tempDir("ds-reference-bench-");
  const { child, url } = await startChild("reference", [script, dataDir], process.env);
  return {
    kind: "reference",
    name: "@durable-streams/server",
    pid: child.pid!,
    streamUrl: (name) => `${url}/bench/${encodeURIComponent(name)}`,
    async stop() {
      await stopChild(child);
      removeDir(dataDir);
    },
  };
}

export function startDsServer(kind: DsServerKind): Promise<DsServer> {
  return kind === "tailhook" ? startDsTailhook() : startDsReference();
}

/** PUT an empty JSON-mode stream; it must not exist yet (201). */
export async function createJsonStream(url: string): Promise<void> {
  const response = await fetch(url, { method: "PUT", headers: { "content-type": "application/json" } });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`PUT ${url}: ${response.status} ${text}`);
}

/** The stream's tail offset, from HEAD's Stream-Next-Offset. */
export async function tailOffset(url: string): Promise<string> {
  const response = await fetch(url, { method: "HEAD" });
  const offset = response.headers.get("stream-next-offset");
  if (response.status !== 200 || offset === null) throw new Error(`HEAD ${url}: ${response.status}, Stream-Next-Offset ${offset}`);
  return offset;
}

/**
 * The tail once it has stopped moving: after a closed-loop load ends, requests that
 * were in flight (up to one per connection) may still be appended, and on a server
 * that appends one at a time that takes a while.
 */
export async function settledTailOffset(url: string, quietMs = 500, timeoutMs = 30_000): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let offset = await tailOffset(url);
  let since = performance.now();
  while (performance.now() - since < quietMs) {
    if (performance.now() > deadline) throw new Error(`the tail of ${url} was still moving ${timeoutMs} ms after the load`);
    await sleep(50);
    const next = await tailOffset(url);
    if (next !== offset) {
      offset = next;
      since = performance.now();
    }
  }
  return offset;
}

/** Counts a JSON stream's messages with plain catch-up reads from -1 until Stream-Up-To-Date. */
export async function countMessages(url: string): Promise<{ messages: number; offset: string }> {
  let offset = "-1";
  let messages = 0;
  for (let page = 0; page < 100_000; page++) {
    const response = await fetch(`${url}?offset=${encodeURIComponent(offset)}`);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`catch-up read of ${url} at ${offset}: ${response.status} ${text.slice(0, 200)}`);
    const next = response.headers.get("stream-next-offset");
    if (next === null) throw new Error(`catch-up read of ${url} at ${offset} answered without Stream-Next-Offset`);
    const batch = JSON.parse(text) as unknown;
    if (!Array.isArray(batch)) throw new Error(`catch-up read of ${url} at ${offset} is not a JSON array`);
    messages += batch.length;
    offset = next;
    if (response.headers.get("stream-up-to-date") === "true") return { messages, offset };
    if (batch.length === 0) throw new Error(`catch-up read of ${url} at ${offset}: an empty page that is not up to date`);
  }
  throw new Error(`catch-up read of ${url}: too many pages`);
}
