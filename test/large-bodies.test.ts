/*
 * Large webhook bodies (storage/sqlite/body-files.ts): on SQLite a body from
 * LARGE_BODY_BYTES on is stored once, in a file of its own, and its row holds none of
 * it; on both stores it reads back byte for byte wherever messages are read (pages,
 * single events, live followers, key-frame snapshots). Every way a row goes (retention,
 * compaction, a deleted inbox) takes its file with it, and a file no committed row names
 * is removed when the writer starts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { LARGE_BODY_BYTES } from "../dist/storage/sqlite/body-files.js";
import type { EventEnvelope } from "../dist/core/types.js";
import { startTestServer, tempDir, testBackend, type TestServer } from "./helpers/server.js";
import { stripeEvent } from "./helpers/webhook-payloads.js";

const onSqlite = testBackend === "sqlite";
let server: TestServer;

beforeAll(async () => {
  // Retention and compaction run when a test asks, so that files are checked after a known pass.
  server = await startTestServer({ maxBodyBytes: 4 * 1024 * 1024 }, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "3600000" } });
});
afterAll(async () => {
  await server.stop();
});

async function newInbox(body: Record<string, unknown> = {}) {
  const inbox = await server.createInbox(body);
  const stream = await server.store.getStream(`inbox/${inbox.id}`);
  return { ...inbox, streamId: stream!.id };
}

async function ingest(url: string, body: Buffer | string): Promise<number> {
  const response = await fetch(url, { method: "POST", body, headers: { "content-type": "application/octet-stream" } });
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { seq: number }).seq;
}

/** The seqs whose bodies are in files, as the folder shows them. */
function filedSeqs(dataDir: string, streamId: number): number[] {
  const folder = join(dataDir, "bodies", String(streamId));
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The rows as SQLite holds them: how many bytes of each body the row itself has. */
function rowBytes(dataDir: string, streamId: number): Map<number, number> {
  const db = new Database(join(dataDir, "tailhook.db"), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT seq, length(data) AS bytes FROM messages WHERE stream_id = ?").all(streamId) as Array<{
      seq: number;
      bytes: number;
    }>;
    return new Map(rows.map((row) => [row.seq, row.bytes]));
  } finally {
    db.close();
  }
}

/** Every event from the start, page by page (a page holds about 1 MiB). */
async function readEvents(url: string, token: string): Promise<EventEnvelope[]> {
  const events: EventEnvelope[] = [];
  for (let offset = "-1"; ;) {
    const response = await fetch(`${url}?offset=${offset}`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    events.push(...((await response.json()) as EventEnvelope[]));
    if (response.headers.get("stream-up-to-date") === "true") return events;
    offset = response.headers.get("stream-next-offset")!;
  }
}

const bodyOf = (event: EventEnvelope) => Buffer.from(event.body, event.bodyEncoding === "utf8" ? "utf8" : "base64");

describe(`large bodies (${testBackend})`, () => {
  it("are stored once, in a file of their own on SQLite, and read back byte for byte by pages, single reads and snapshots", async () => {
    const inbox = await newInbox();
    const bodies = [
      randomBytes(1024 * 1024),
      Buffer.from("small"),
      randomBytes(LARGE_BODY_BYTES),
      randomBytes(LARGE_BODY_BYTES - 1),
      Buffer.from("x".repeat(3 * 1024 * 1024)),
    ];
    const seqs: number[] = [];
    for (const body of bodies) seqs.push(await ingest(inbox.ingestUrl, body));

    const events = await readEvents(inbox.streamUrl, inbox.token);
    expect(events.map((event) => bodyOf(event).toString("base64"))).toEqual(bodies.map((body) => body.toString("base64")));
    const single = await server.store.readMessage!(inbox.streamId, seqs[0]!);
    expect(single?.data.equals(bodies[0]!)).toBe(true);
    expect(Object.keys(single!).sort()).toEqual(["createdAt", "data", "meta", "seq"]);
    const page = await server.store.readMessages(inbox.streamId, 0, { maxMessages: 10, maxBytes: 64 * 1024 * 1024 });
    for (const message of page) expect(Object.keys(message).sort()).toEqual(["createdAt", "data", "meta", "seq"]);

    if (onSqlite) {
      const large = seqs.filter((_, index) => bodies[index]!.length >= LARGE_BODY_BYTES);
      expect(filedSeqs(server.dataDir, inbox.streamId)).toEqual(large);
      const rows = rowBytes(server.dataDir, inbox.streamId);
      expect(seqs.map((seq) => rows.get(seq))).toEqual(bodies.map((body) => (body.length >= LARGE_BODY_BYTES ? 0 : body.length)));
    }
  });

  it("are in an inbox's key-frame snapshot byte for byte", async () => {
    const inbox = await newInbox({ settings: { keyFrame: { preset: "stripe" } } });
    const big = stripeEvent("customer.updated", { id: "cus_big", object: "customer", note: "n".repeat(LARGE_BODY_BYTES) });
    await ingest(inbox.ingestUrl, big);
    const response = await fetch(`${inbox.streamUrl}?offset=snapshot`, { headers: { authorization: `Bearer ${inbox.token}` } });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain("n".repeat(LARGE_BODY_BYTES));
    if (onSqlite) expect(filedSeqs(server.dataDir, inbox.streamId)).toEqual([1]);
  });

  it("go with their rows: retention, compaction and a deleted inbox remove their files", async () => {
    const retained = await newInbox({ settings: { retention: { maxEvents: 1 } } });
    for (let i = 0; i < 3; i++) await ingest(retained.ingestUrl, randomBytes(LARGE_BODY_BYTES + i));
    const customer = (n: number) =>
      stripeEvent("customer.updated", { id: "cus_1", object: "customer", pad: String(n).repeat(LARGE_BODY_BYTES) });
    const compacted = await newInbox({ settings: { keyFrame: { preset: "stripe" }, retention: { compact: true, compactLag: 0 } } });
    for (let n = 0; n < 3; n++) await ingest(compacted.ingestUrl, customer(n));
    const deleted = await newInbox();
    await ingest(deleted.ingestUrl, randomBytes(LARGE_BODY_BYTES));
    if (onSqlite) expect(filedSeqs(server.dataDir, deleted.streamId)).toEqual([1]);
    expect((await server.admin(`/api/inboxes/${deleted.id}`, { method: "DELETE" })).status).toBe(204);

    await (server.store as unknown as { prune(): Promise<number> }).prune();
    expect(await server.store.compactNow!()).toBeGreaterThan(0);

    const kept = await readEvents(retained.streamUrl, retained.token);
    expect(kept.map((event) => event.seq)).toEqual([3]);
    expect(bodyOf(kept[0]!).length).toBe(LARGE_BODY_BYTES + 2);
    if (!onSqlite) return;
    // Removed after the commits that deleted the rows.
    await vi.waitFor(() => {
      expect(filedSeqs(server.dataDir, retained.streamId)).toEqual([3]);
      expect(filedSeqs(server.dataDir, compacted.streamId)).toEqual([3]);
      expect(filedSeqs(server.dataDir, deleted.streamId)).toEqual([]);
    });
  });
});

describe.skipIf(!onSqlite)("large bodies at the writer's start", () => {
  it("removes the files that no committed row names, and keeps every other", async () => {
    const dataDir = tempDir();
    let first: TestServer | undefined = await startTestServer({}, { dataDir });
    let second: TestServer | undefined;
    try {
      const inbox = await first.createInbox();
      const streamId = (await first.store.getStream(`inbox/${inbox.id}`))!.id;
      const body = randomBytes(LARGE_BODY_BYTES);
      await fetch(inbox.ingestUrl, { method: "POST", body });
      await first.stop();
      first = undefined;
      // What a batch that never committed leaves: a file for the next seq, and one of a stream with no rows.
      writeFileSync(join(dataDir, "bodies", String(streamId), "2"), randomBytes(1000));
      mkdirSync(join(dataDir, "bodies", "999999"));
      writeFileSync(join(dataDir, "bodies", "999999", "1"), randomBytes(1000));

      second = await startTestServer({}, { dataDir });
      expect(filedSeqs(dataDir, streamId)).toEqual([1]);
      expect(filedSeqs(dataDir, 999999)).toEqual([]);
      const streamUrl = `${second.url}/v1/stream/inbox/${inbox.id}`;
      const events = await readEvents(streamUrl, inbox.token);
      expect(events.map((event) => bodyOf(event).equals(body))).toEqual([true]);
      // The next event takes seq 2 and its own file.
      const next = randomBytes(LARGE_BODY_BYTES + 7);
      const response = await fetch(`${second.url}/h/${inbox.id}`, { method: "POST", body: next });
      expect(((await response.json()) as { seq: number }).seq).toBe(2);
      expect(bodyOf((await readEvents(streamUrl, inbox.token))[1]!).equals(next)).toBe(true);
      expect(filedSeqs(dataDir, streamId)).toEqual([1, 2]);
    } finally {
      await first?.stop();
      await second?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
