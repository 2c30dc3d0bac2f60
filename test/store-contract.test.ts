/*
 * The storage contract (src/storage/store.ts), run against every backend directly on
 * the Store interface, below HTTP: SQLite in a temp folder always, and PostgreSQL —
 * a fresh schema per test — when TAILHOOK_TEST_PG_URL names a database. Whatever
 * one backend does here, the other must do too; the HTTP layer relies on nothing else.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { buildEnvelope } from "../dist/core/capture.js";
import type { CapturedRequest, InboxSettings } from "../dist/core/types.js";
import { PostgresStore } from "../dist/storage/postgres/postgres-store.js";
import { SqliteStore } from "../dist/storage/sqlite/sqlite-store.js";
import type { NewInbox, Store } from "../dist/storage/store.js";
import { appendRequest, createRequest } from "./helpers/stream-requests.js";

/** A store under test, and how to open it again on the same data and remove it. */
interface Opened {
  store: Store;
  reopen(): Promise<Store>;
  destroy(): Promise<void>;
}

interface Backend {
  name: string;
  open(): Promise<Opened>;
}

const backends: Backend[] = [
  {
    name: "sqlite",
    async open() {
      const dataDir = mkdtempSync(join(tmpdir(), "tailhook-contract-"));
      return {
        store: await SqliteStore.open({ dataDir }),
        reopen: () => SqliteStore.open({ dataDir }),
        destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
      };
    },
  },
];

const pgUrl = process.env.TAILHOOK_TEST_PG_URL;
let pgAdmin: postgres.Sql | undefined;
if (pgUrl) {
  backends.push({
    name: "postgres",
    async open() {
      const schema = `contract_${process.pid}_${randomBytes(5).toString("hex")}`;
      pgAdmin ??= postgres(pgUrl, { max: 1, onnotice: () => undefined });
      const admin = pgAdmin;
      return {
        store: await PostgresStore.open({ url: pgUrl, schema }),
        reopen: () => PostgresStore.open({ url: pgUrl, schema }),
        destroy: async () => {
          await admin.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
    },
  });
}

afterAll(async () => {
  await pgAdmin?.end({ timeout: 5 });
});

let counter = 0;

function newInbox(overrides: Partial<NewInbox> = {}): NewInbox {
  counter++;
  return {
    id: randomBytes(18).toString("base64url"),
    name: `inbox-${counter}`,
    tokenHash: randomBytes(32),
    settings: {},
    ...overrides,
  };
}

/** A captured request with a distinct id, a past receivedAt and awkward headers. */
function captured(body: Uint8Array, tag = `t${++counter}`): CapturedRequest {
  return {
    id: `evt_${randomBytes(16).toString("hex")}`,
    receivedAt: Date.now() - Math.floor(Math.random() * 100_000),
    method: ["POST", "PUT", "GET", "PATCH"][counter % 4]!,
    path: `/sub/${tag}/é%20x`,
    query: `tag=${tag}&x=1&x=2`,
    rawHeaders: ["Content-Type", "application/octet-stream", "X-Dup", "a", "x-dup", "b", "X-Tag", tag],
    remoteAddr: counter % 2 ? "127.0.0.1" : "::ffff:10.1.2.3",
    body,
  };
}

function randomBody(): Buffer {
  const kind = Math.random();
  if (kind < 0.1) return Buffer.alloc(0);
  if (kind < 0.6) return randomBytes(Math.floor(Math.random() * 2048));
  return Buffer.from(`{"text":"ünïcødé ✓ ${"x".repeat(Math.floor(Math.random() * 500))}"}`, "utf8");
}

/** The stored message must give back the exact request: bytes, meta and time. */
function expectRoundTrip(message: { seq: number; createdAt: number; data: Buffer; meta: string | null }, request: CapturedRequest) {
  expect(Buffer.isBuffer(message.data)).toBe(true);
  expect(message.data.equals(Buffer.from(request.body))).toBe(true);
  expect(message.meta).not.toBeNull();
  expect(message.createdAt).toBe(request.receivedAt);
  const envelope = buildEnvelope(message);
  expect(envelope).toMatchObject({
    seq: message.seq,
    id: request.id,
    method: request.method,
    path: request.path,
    query: request.query,
    remoteAddr: request.remoteAddr,
    size: request.body.byteLength,
    receivedAt: new Date(request.receivedAt).toISOString(),
  });
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < request.rawHeaders.length; i += 2) pairs.push([request.rawHeaders[i]!, request.rawHeaders[i + 1]!]);
  expect(envelope.headers).toEqual(pairs);
}

const ALL = { maxMessages: 100_000, maxBytes: 1024 * 1024 * 1024 };

describe.each(backends)("store contract: $name", (backend) => {
  const opened: Opened[] = [];
  const extraStores: Store[] = [];

  async function open(): Promise<Opened> {
    const result = await backend.open();
    opened.push(result);
    return result;
  }

  afterEach(async () => {
    for (const store of extraStores.splice(0)) await store.close().catch(() => undefined);
    for (const entry of opened.splice(0)) {
      await entry.store.close().catch(() => undefined);
      await entry.destroy();
    }
  });

  it("creates, gets, lists, updates and deletes inboxes", async () => {
    const { store } = await open();
    expect(store.isHealthy()).toBe(true);
    expect(await store.listInboxes()).toEqual([]);

    const settings: InboxSettings = {
      maxBodyBytes: 1234,
      response: { status: 202, headers: { "x-reply": "yes" }, body: "thanks" },
      retention: { maxEvents: 10 },
    };
    const spec = newInbox({ name: "first", settings });
    const before = Date.now();
    const created = await store.createInbox(spec);
    expect(created).toEqual({ id: spec.id, name: "first", streamId: expect.any(Number), settings, createdAt: expect.any(Number) });
    expect(created.createdAt).toBeGreaterThanOrEqual(before - 1);
    expect(created.createdAt).toBeLessThanOrEqual(Date.now() + 1);
    expect(created).not.toHaveProperty("tokenHash");

    const stored = await store.getInbox(spec.id);
    expect(stored).toBeDefined();
    expect(stored!.tokenHash.equals(spec.tokenHash)).toBe(true);
    expect({ ...stored!, tokenHash: undefined }).toEqual({ ...created, tokenHash: undefined });

    const second = await store.createInbox(newInbox({ name: null }));
    expect(second.streamId).not.toBe(created.streamId);
    expect(second.name).toBeNull();
    const listed = await store.listInboxes();
    expect(listed.map((inbox) => inbox.id).sort()).toEqual([created.id, second.id].sort());
    for (const inbox of listed) expect(inbox).not.toHaveProperty("tokenHash");
    expect(listed.find((inbox) => inbox.id === created.id)).toEqual(created);

    // Its stream exists, empty.
    const stream = await store.getStream(`inbox/${spec.id}`);
    expect(stream).toEqual({
      id: created.streamId,
      name: `inbox/${spec.id}`,
      contentType: "application/json",
      tailSeq: 0,
      firstSeq: 1,
      closed: false,
      createdAt: expect.any(Number),
      softDeleted: false,
      ttlSeconds: null,
      expiresAt: null,
      touchedAt: null,
      forkedFrom: null,
      forkSeq: null,
      stateProtocol: null,
      keyFrame: null,
      keyFrameVersion: 0,
      horizonSeq: 0,
      compaction: null,
    });
    expect(await store.getStreamById(created.streamId)).toEqual(stream);

    // Updates: the name alone, the settings alone, the name back to null.
    const renamed = await store.updateInbox(spec.id, { name: "renamed" });
    expect(renamed).toEqual({ ...created, name: "renamed" });
    expect(renamed).not.toHaveProperty("tokenHash");
    expect((await store.getInbox(spec.id))!.name).toBe("renamed");
    const newSettings: InboxSettings = { maxBodyBytes: 99 };
    expect(await store.updateInbox(spec.id, { settings: newSettings })).toEqual({ ...created, name: "renamed", settings: newSettings });
    expect((await store.getInbox(spec.id))!.settings).toEqual(newSettings);
    expect(await store.updateInbox(spec.id, { name: null })).toEqual({ ...created, name: null, settings: newSettings });
    expect(await store.updateInbox(spec.id, {})).toEqual({ ...created, name: null, settings: newSettings });
    expect(await store.updateInbox("no-such-inbox-aaaaaaaaaaaa", { name: "x" })).toBeUndefined();
    expect(await store.getInbox("no-such-inbox-aaaaaaaaaaaa")).toBeUndefined();

    // Delete: gone everywhere, its stream too, and writes to it are refused.
    await store.appendEvent(created.streamId, captured(Buffer.from("before delete")));
    await store.ensureConsumer(created.streamId, "worker", 0);
    expect(await store.deleteInbox(spec.id)).toBe(true);
    expect(await store.getInbox(spec.id)).toBeUndefined();
    expect((await store.listInboxes()).map((inbox) => inbox.id)).toEqual([second.id]);
    expect(await store.getStream(`inbox/${spec.id}`)).toBeUndefined();
    expect(await store.getStreamById(created.streamId)).toBeUndefined();
    expect(await store.appendEvent(created.streamId, captured(Buffer.from("after delete")))).toEqual({ status: "not_found" });
    expect(await store.listConsumers(created.streamId)).toEqual([]);
    expect(await store.updateInbox(spec.id, { name: "zombie" })).toBeUndefined();
    expect(await store.deleteInbox(spec.id)).toBe(false);

    // The other inbox is untouched and still takes writes.
    expect(await store.appendEvent(second.streamId, captured(Buffer.from("still here")))).toEqual({ status: "appended", seq: 1 });
    expect(await store.appendEvent(987_654, captured(Buffer.from("no stream")))).toEqual({ status: "not_found" });
  });

  it("hands out gapless seqs 1..N to 500 concurrent appends and keeps every byte", async () => {
    const { store } = await open();
    const a = await store.createInbox(newInbox());
    const b = await store.createInbox(newInbox());
    const requestsA = Array.from({ length: 500 }, () => captured(randomBody()));
    const requestsB = Array.from({ length: 120 }, () => captured(randomBody()));
    // Interleave the two streams so batches extend both.
    const calls: Array<Promise<{ stream: "a" | "b"; index: number; result: Awaited<ReturnType<Store["appendEvent"]>> }>> = [];
    for (let i = 0; i < requestsA.length; i++) {
      calls.push(store.appendEvent(a.streamId, requestsA[i]!).then((result) => ({ stream: "a" as const, index: i, result })));
      if (i < requestsB.length) {
        calls.push(store.appendEvent(b.streamId, requestsB[i]!).then((result) => ({ stream: "b" as const, index: i, result })));
      }
    }
    const results = await Promise.all(calls);

    for (const [streamName, inbox, requests] of [
      ["a", a, requestsA],
      ["b", b, requestsB],
    ] as const) {
      const mine = results.filter((entry) => entry.stream === streamName);
      const seqs = mine.map((entry) => {
        expect(entry.result.status).toBe("appended");
        return (entry.result as { seq: number }).seq;
      });
      expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: requests.length }, (_, i) => i + 1));

      const messages = await store.readMessages(inbox.streamId, 0, ALL);
      expect(messages.map((message) => message.seq)).toEqual(Array.from({ length: requests.length }, (_, i) => i + 1));
      for (const entry of mine) {
        const seq = (entry.result as { seq: number }).seq;
        expectRoundTrip(messages[seq - 1]!, requests[entry.index]!);
      }
      const stream = await store.getStreamById(inbox.streamId);
      expect(stream).toMatchObject({ id: inbox.streamId, tailSeq: requests.length, firstSeq: 1 });
      expect(await store.getStream(`inbox/${inbox.id}`)).toEqual(stream);
    }
  });

  it("keeps tails right when appends and a delete share batches, and after reopening", async () => {
    const opened = await open();
    const a = await opened.store.createInbox(newInbox());
    const b = await opened.store.createInbox(newInbox());
    // Not awaited one by one: the writes queue up and commit in shared batches.
    const appendsA = Array.from({ length: 60 }, (_, i) => opened.store.appendEvent(a.streamId, captured(Buffer.from(`a${i}`))));
    const appendsB = Array.from({ length: 30 }, (_, i) => opened.store.appendEvent(b.streamId, captured(Buffer.from(`b${i}`))));
    const deleted = opened.store.deleteInbox(b.id);
    const lateB = Array.from({ length: 10 }, () => opened.store.appendEvent(b.streamId, captured(Buffer.from("late"))));
    const resultsA = await Promise.all(appendsA);
    expect(resultsA.map((result) => (result as { seq: number }).seq).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    expect(await deleted).toBe(true);
    // Called while the delete was pending, each append lands on one side of it (SQLite keeps
    // call order; PostgreSQL's queued appends may commit after a delete that runs on its own):
    // those before it have gapless seqs, those after it are refused. Once the delete returned,
    // the inbox takes nothing.
    const resultsB = await Promise.all([...appendsB, ...lateB]);
    const seqsB = resultsB.flatMap((result) => (result.status === "appended" ? [result.seq] : []));
    expect(resultsB.filter((result) => result.status !== "appended")).toEqual(
      Array.from({ length: 40 - seqsB.length }, () => ({ status: "not_found" })),
    );
    expect(seqsB.sort((x, y) => x - y)).toEqual(Array.from({ length: seqsB.length }, (_, i) => i + 1));
    expect(await opened.store.appendEvent(b.streamId, captured(Buffer.from("after delete")))).toEqual({ status: "not_found" });

    await opened.store.close();
    const store = await opened.reopen();
    extraStores.push(store);
    expect(await store.getStreamById(a.streamId)).toMatchObject({ tailSeq: 60, firstSeq: 1 });
    expect(await store.getStreamById(b.streamId)).toBeUndefined();
    expect(await store.appendEvent(a.streamId, captured(Buffer.from("after reopen")))).toEqual({ status: "appended", seq: 61 });
    expect(await store.appendEvent(b.streamId, captured(Buffer.from("after reopen")))).toEqual({ status: "not_found" });
    expect((await store.readMessages(a.streamId, 0, ALL)).map((message) => message.data.toString())).toEqual([
      ...Array.from({ length: 60 }, (_, i) => `a${i}`),
      "after reopen",
    ]);
  });

  it("reads pages within maxMessages and maxBytes, after a seq, and single messages", async () => {
    const { store } = await open();
    const inbox = await store.createInbox(newInbox());
    const other = await store.createInbox(newInbox());
    // seq 1 and 2 are empty, 3..12 are 100 bytes each.
    const bodies = [Buffer.alloc(0), Buffer.alloc(0), ...Array.from({ length: 10 }, (_, i) => Buffer.alloc(100, i + 1))];
    const requests = bodies.map((body) => captured(body));
    for (const request of requests) await store.appendEvent(inbox.streamId, request);
    await store.appendEvent(other.streamId, captured(Buffer.from("other stream")));
    const seqs = async (afterSeq: number, maxMessages: number, maxBytes: number) =>
      (await store.readMessages(inbox.streamId, afterSeq, { maxMessages, maxBytes })).map((message) => message.seq);

    expect(await seqs(0, 1000, 1 << 30)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // maxMessages
    expect(await seqs(0, 3, 1 << 30)).toEqual([1, 2, 3]);
    expect(await seqs(0, 1, 1 << 30)).toEqual([1]);
    // afterSeq
    expect(await seqs(4, 3, 1 << 30)).toEqual([5, 6, 7]);
    expect(await seqs(11, 1000, 1 << 30)).toEqual([12]);
    expect(await seqs(12, 1000, 1 << 30)).toEqual([]);
    expect(await seqs(50, 1000, 1 << 30)).toEqual([]);
    // maxBytes: stop once the bytes read reach it, the message that passes it included.
    expect(await seqs(2, 1000, 250)).toEqual([3, 4, 5]);
    expect(await seqs(2, 1000, 300)).toEqual([3, 4, 5]);
    expect(await seqs(2, 1000, 301)).toEqual([3, 4, 5, 6]);
    expect(await seqs(2, 1000, 100)).toEqual([3]);
    // Empty bodies count nothing towards the limit.
    expect(await seqs(0, 1000, 150)).toEqual([1, 2, 3, 4]);
    // Both limits: whichever comes first.
    expect(await seqs(2, 2, 1000)).toEqual([3, 4]);
    expect(await seqs(2, 5, 150)).toEqual([3, 4]);
    // At least one message always, however small the byte limit (0: see the next test).
    expect(await seqs(5, 1000, 1)).toEqual([6]);

    const page = await store.readMessages(inbox.streamId, 2, { maxMessages: 2, maxBytes: 1 << 30 });
    expectRoundTrip(page[0]!, requests[2]!);
    expectRoundTrip(page[1]!, requests[3]!);

    // readMessage: exactly that seq, of that stream.
    for (const seq of [1, 2, 7, 12]) {
      const message = await store.readMessage(inbox.streamId, seq);
      expect(message?.seq).toBe(seq);
      expectRoundTrip(message!, requests[seq - 1]!);
    }
    expect(await store.readMessage(inbox.streamId, 0)).toBeUndefined();
    expect(await store.readMessage(inbox.streamId, 13)).toBeUndefined();
    expect((await store.readMessage(other.streamId, 1))!.data.toString()).toBe("other stream");
    expect(await store.readMessage(other.streamId, 2)).toBeUndefined();
    expect(await store.readMessages(987_654, 0, ALL)).toEqual([]);

    expect(await store.getStreamById(inbox.streamId)).toMatchObject({ tailSeq: 12, firstSeq: 1 });
    expect(await store.getStreamById(other.streamId)).toMatchObject({ tailSeq: 1, firstSeq: 1 });
    expect(await store.getStream("inbox/nothing-by-that-name")).toBeUndefined();
    expect(await store.getStreamById(987_654)).toBeUndefined();
  });

  it("returns one message even with a byte limit of 0", async () => {
    // ReadLimits.maxBytes: "at least one message is always returned".
    const { store } = await open();
    const inbox = await store.createInbox(newInbox());
    const request = captured(Buffer.from("the only one"));
    await store.appendEvent(inbox.streamId, request);
    await store.appendEvent(inbox.streamId, captured(Buffer.from("the next one")));
    const page = await store.readMessages(inbox.streamId, 0, { maxMessages: 10, maxBytes: 0 });
    expect(page.map((message) => message.seq)).toEqual([1]);
    expectRoundTrip(page[0]!, request);
  });

  it("tells commit listeners the new tails", async () => {
    const { store } = await open();
    const a = await store.createInbox(newInbox());
    const b = await store.createInbox(newInbox());
    const calls: Array<Map<number, number>> = [];
    store.onCommit((tails) => calls.push(new Map(tails)));
    const seen = (streamId: number) => Math.max(0, ...calls.map((tails) => tails.get(streamId) ?? 0));

    expect(await store.appendEvent(a.streamId, captured(Buffer.from("one")))).toEqual({ status: "appended", seq: 1 });
    await vi.waitFor(() => expect(seen(a.streamId)).toBe(1), { timeout: 5000 });

    const results = await Promise.all([
      store.appendEvent(a.streamId, captured(Buffer.from("two"))),
      store.appendEvent(b.streamId, captured(Buffer.from("b one"))),
      store.appendEvent(a.streamId, captured(Buffer.from("three"))),
      store.appendEvent(b.streamId, captured(Buffer.from("b two"))),
    ]);
    expect(results.every((result) => result.status === "appended")).toBe(true);
    await vi.waitFor(
      () => {
        expect(seen(a.streamId)).toBe(3);
        expect(seen(b.streamId)).toBe(2);
      },
      { timeout: 5000 },
    );
    // Every tail reported for these streams is one that was really reached.
    for (const tails of calls) {
      if (tails.has(a.streamId)) expect(tails.get(a.streamId)).toBeGreaterThanOrEqual(1);
    }
    // A delete wakes the stream's readers: it is reported with the "wake everyone" tail.
    const before = calls.length;
    await store.deleteInbox(b.id);
    await vi.waitFor(() => expect(calls.slice(before).some((tails) => tails.get(b.streamId) === Number.MAX_SAFE_INTEGER)).toBe(true), {
      timeout: 5000,
    });
    // Refused appends extend nothing.
    const afterDelete = calls.length;
    expect(await store.appendEvent(b.streamId, captured(Buffer.from("refused")))).toEqual({ status: "not_found" });
    // A sentinel commit after it: once its tail is reported, so would the refused one's have been.
    expect(await store.appendEvent(a.streamId, captured(Buffer.from("sentinel")))).toEqual({ status: "appended", seq: 4 });
    await vi.waitFor(() => expect(seen(a.streamId)).toBe(4), { timeout: 5000 });
    expect(
      calls.slice(afterDelete).some((tails) => (tails.get(b.streamId) ?? 0) > 2 && tails.get(b.streamId) !== Number.MAX_SAFE_INTEGER),
    ).toBe(false);
  });

  it("keeps consumers: ensure, ack forward only, list, delete", async () => {
    const { store } = await open();
    const inbox = await store.createInbox(newInbox());
    const other = await store.createInbox(newInbox());
    const s = inbox.streamId;

    expect(await store.getConsumer(s, "worker")).toBeUndefined();
    expect(await store.listConsumers(s)).toEqual([]);

    const before = Date.now();
    const ensured = await store.ensureConsumer(s, "worker", 5);
    expect(ensured).toEqual({
      streamId: s,
      name: "worker",
      committedSeq: 5,
      createdAt: expect.any(Number),
      lastAckAt: null,
      lastSeenAt: null,
    });
    expect(ensured.createdAt).toBeGreaterThanOrEqual(before - 1);
    // Idempotent: an existing consumer is returned as it is.
    expect(await store.ensureConsumer(s, "worker", 9)).toEqual(ensured);
    expect(await store.ensureConsumer(s, "worker", 0)).toEqual(ensured);
    expect(await store.getConsumer(s, "worker")).toEqual(ensured);

    // Ack moves forward, never back.
    const acked = await store.ackConsumer(s, "worker", 8);
    expect(acked).toMatchObject({ streamId: s, name: "worker", committedSeq: 8, createdAt: ensured.createdAt });
    expect(acked.lastAckAt).toEqual(expect.any(Number));
    expect((await store.ackConsumer(s, "worker", 3)).committedSeq).toBe(8);
    expect((await store.ackConsumer(s, "worker", 8)).committedSeq).toBe(8);
    expect((await store.getConsumer(s, "worker"))!.committedSeq).toBe(8);
    expect((await store.ensureConsumer(s, "worker", 1)).committedSeq).toBe(8);

    // Concurrent acks in any order end at the highest.
    const order = Array.from({ length: 60 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    const concurrent = await Promise.all(order.map((seq) => store.ackConsumer(s, "racer", seq)));
    expect(concurrent.every((consumer) => consumer.committedSeq >= 1 && consumer.committedSeq <= 60)).toBe(true);
    expect((await store.getConsumer(s, "racer"))!.committedSeq).toBe(60);

    // Ack creates a consumer that does not exist yet, at that seq.
    const created = await store.ackConsumer(s, "late", 4);
    expect(created).toMatchObject({ streamId: s, name: "late", committedSeq: 4 });
    expect(created.lastAckAt).toEqual(expect.any(Number));

    // Seen marks.
    await store.markConsumerSeen(s, "late");
    expect((await store.getConsumer(s, "late"))!.lastSeenAt).toEqual(expect.any(Number));
    await store.markConsumerSeen(s, "nobody");
    expect(await store.getConsumer(s, "nobody")).toBeUndefined();

    // Consumers are per stream, listed by name.
    await store.ensureConsumer(other.streamId, "worker", 0);
    expect((await store.listConsumers(s)).map((consumer) => [consumer.name, consumer.committedSeq])).toEqual([
      ["late", 4],
      ["racer", 60],
      ["worker", 8],
    ]);
    expect((await store.listConsumers(other.streamId)).map((consumer) => [consumer.name, consumer.committedSeq])).toEqual([["worker", 0]]);

    // Delete.
    expect(await store.deleteConsumer(s, "racer")).toBe(true);
    expect(await store.deleteConsumer(s, "racer")).toBe(false);
    expect(await store.getConsumer(s, "racer")).toBeUndefined();
    expect((await store.listConsumers(s)).map((consumer) => consumer.name)).toEqual(["late", "worker"]);
    expect((await store.getConsumer(other.streamId, "worker"))!.committedSeq).toBe(0);
    // A deleted consumer starts afresh.
    expect((await store.ensureConsumer(s, "racer", 2)).committedSeq).toBe(2);
  });

  it("close() lets queued writes commit first", async () => {
    const { store, reopen } = await open();
    const inbox = await store.createInbox(newInbox());
    const requests = Array.from({ length: 300 }, () => captured(randomBody()));
    const appends = requests.map((request) => store.appendEvent(inbox.streamId, request));
    const ack = store.ackConsumer(inbox.streamId, "closer", 42);
    const closed = store.close();
    const results = await Promise.all(appends);
    expect((await ack).committedSeq).toBe(42);
    await closed;
    await store.close(); // twice is fine
    expect(results.map((result) => (result.status === "appended" ? result.seq : -1)).sort((x, y) => x - y)).toEqual(
      Array.from({ length: requests.length }, (_, i) => i + 1),
    );
    await expect(store.appendEvent(inbox.streamId, captured(Buffer.from("too late")))).rejects.toThrow();

    const again = await reopen();
    extraStores.push(again);
    const messages = await again.readMessages(inbox.streamId, 0, ALL);
    expect(messages.map((message) => message.seq)).toEqual(Array.from({ length: requests.length }, (_, i) => i + 1));
    results.forEach((result, index) => expectRoundTrip(messages[(result as { seq: number }).seq - 1]!, requests[index]!));
    expect((await again.getConsumer(inbox.streamId, "closer"))!.committedSeq).toBe(42);
    expect(await again.getStreamById(inbox.streamId)).toMatchObject({ tailSeq: requests.length });
    // And the reopened store carries on after the last seq.
    expect(await again.appendEvent(inbox.streamId, captured(Buffer.from("next")))).toEqual({ status: "appended", seq: 301 });
  });
});

/*
 * General (Durable Streams) streams through the same port, `store.general`, on every
 * backend: the outcomes http turns into protocol answers must be the same values.
 */
describe.each(backends)("general streams contract: $name", (backend) => {
  const opened: Opened[] = [];
  afterEach(async () => {
    for (const entry of opened.splice(0)) {
      await entry.store.close().catch(() => undefined);
      await entry.destroy();
    }
  });

  async function general() {
    const entry = await backend.open();
    opened.push(entry);
    expect(entry.store.general).toBeDefined();
    return { entry, streams: entry.store.general! };
  }

  const create = createRequest;
  const append = appendRequest;
  const texts = async (store: Store, streamId: number) =>
    (await store.readMessages(streamId, 0, ALL)).map((message) => message.data.toString());

  it("creates idempotently, refuses a different config, appends in order and closes", async () => {
    const { entry, streams } = await general();
    const created = await streams.createStream(create("a/b", { messages: [Buffer.from("m1")] }));
    expect(created).toMatchObject({ status: "created", stream: { name: "a/b", contentType: "text/plain", tailSeq: 1, closed: false } });
    expect(await streams.createStream(create("a/b", { messages: [Buffer.from("m1")] }))).toMatchObject({ status: "exists" });
    expect(await streams.createStream(create("a/b", { contentType: "application/json" }))).toMatchObject({ status: "conflict" });

    expect(await streams.appendStream(append("a/b", ["m2", "m3"]))).toMatchObject({ status: "appended", stream: { tailSeq: 3 } });
    expect(await streams.appendStream(append("a/b", ["x"], { contentType: "application/json" }))).toMatchObject({
      status: "content_type_mismatch",
    });
    expect(await streams.appendStream(append("a/b", ["m4"], { streamSeq: "0002" }))).toMatchObject({ status: "appended" });
    expect(await streams.appendStream(append("a/b", ["m5"], { streamSeq: "0001" }))).toMatchObject({ status: "stream_seq_regression" });
    expect(await streams.appendStream(append("a/b", [], { close: true }))).toMatchObject({
      status: "appended",
      stream: { closed: true, tailSeq: 4 },
    });
    expect(await streams.appendStream(append("a/b", ["late"]))).toMatchObject({ status: "closed" });
    expect(await streams.appendStream(append("no/such", ["x"]))).toEqual({ status: "not_found" });

    const stream = (await entry.store.getStream("a/b"))!;
    expect(stream).toMatchObject({ tailSeq: 4, closed: true });
    expect(await texts(entry.store, stream.id)).toEqual(["m1", "m2", "m3", "m4"]);
    expect((await streams.listGeneralStreams()).map((listed) => listed.name)).toEqual(["a/b"]);
  });

  it("fences producers by epoch and sequence, and answers retries as duplicates", async () => {
    const { streams } = await general();
    await streams.createStream(create("p"));
    const as = (epoch: number, seq: number) => ({ producer: { id: "writer-1", epoch, seq } });
    expect(await streams.appendStream(append("p", ["a"], as(0, 0)))).toMatchObject({ status: "appended", producerSeq: 0 });
    expect(await streams.appendStream(append("p", ["a"], as(0, 0)))).toMatchObject({ status: "duplicate", producerSeq: 0 });
    expect(await streams.appendStream(append("p", ["c"], as(0, 2)))).toEqual({ status: "producer_seq_gap", expected: 1, received: 2 });
    expect(await streams.appendStream(append("p", ["b"], as(0, 1)))).toMatchObject({ status: "appended", stream: { tailSeq: 2 } });
    expect(await streams.appendStream(append("p", ["z"], as(1, 5)))).toEqual({ status: "new_epoch_needs_seq_zero" });
    expect(await streams.appendStream(append("p", ["d"], as(1, 0)))).toMatchObject({ status: "appended", stream: { tailSeq: 3 } });
    expect(await streams.appendStream(append("p", ["old"], as(0, 2)))).toEqual({ status: "stale_epoch", epoch: 1 });
  });

  it("forks read the source's messages up to the fork point, and a deleted source stays while forks read it", async () => {
    const { entry, streams } = await general();
    await streams.createStream(create("src", { messages: ["s1", "s2", "s3"].map((text) => Buffer.from(text)) }));
    const fork = await streams.createStream(create("fork", { contentType: null, fork: { source: "src", offsetSeq: 2, subOffset: 0 } }));
    expect(fork).toMatchObject({ status: "created", stream: { tailSeq: 2, forkSeq: 2, contentType: "text/plain" } });
    expect(await streams.createStream(create("orphan", { fork: { source: "missing", offsetSeq: null, subOffset: 0 } }))).toEqual({
      status: "source_not_found",
    });
    await streams.appendStream(append("fork", ["f3"]));
    await streams.appendStream(append("src", ["s4"]));

    expect(await streams.deleteStream("src")).toEqual({ status: "deleted" });
    expect(await streams.deleteStream("src")).toEqual({ status: "gone" });
    expect(await streams.appendStream(append("src", ["x"]))).toEqual({ status: "gone" });
    const forked = (await entry.store.getStream("fork"))!;
    // Seqs 1..2 are read through to the source, 3 is the fork's own: the source's data outlives its delete.
    expect(await texts(entry.store, forked.id)).toEqual(["s1", "s2", "f3"]);
    expect(await streams.deleteStream("fork")).toEqual({ status: "deleted" });
    expect(await streams.deleteStream("fork")).toEqual({ status: "not_found" });
    expect(await entry.store.getStream("src")).toBeUndefined();
    expect(await streams.createStream(create("src"))).toMatchObject({ status: "created", stream: { tailSeq: 0 } });
  });

  it("expires streams by absolute expiry, and keeps streams, producers, closure and records across a reopen", async () => {
    const { entry, streams } = await general();
    await streams.createStream(create("short", { expiresAt: Date.now() + 300 }));
    await streams.createStream(create("kept", { ttlSeconds: 3600 }));
    await streams.appendStream(append("kept", ["k1"], { producer: { id: "w", epoch: 3, seq: 0 } }));
    await streams.createStream(create("done", { closed: true }));
    await streams.putRecord("kind-a", "key-1", "value-1");
    await streams.putRecord("kind-a", "key-2", "value-2");
    await streams.putRecord("kind-a", "key-2", null);
    await vi.waitFor(async () => expect(await streams.appendStream(append("short", ["x"]))).toEqual({ status: "not_found" }), {
      timeout: 10_000,
      interval: 50,
    });

    await entry.store.close();
    const store = await entry.reopen();
    opened.push({ ...entry, store });
    const again = store.general!;
    expect(await store.getStream("kept")).toMatchObject({ tailSeq: 1, closed: false, ttlSeconds: 3600 });
    expect(await again.appendStream(append("done", ["x"]))).toMatchObject({ status: "closed" });
    expect(await again.appendStream(append("kept", ["k1"], { producer: { id: "w", epoch: 3, seq: 0 } }))).toMatchObject({
      status: "duplicate",
    });
    expect(await again.appendStream(append("kept", ["k2"], { producer: { id: "w", epoch: 2, seq: 0 } }))).toEqual({
      status: "stale_epoch",
      epoch: 3,
    });
    expect(await again.listRecords("kind-a")).toEqual([{ key: "key-1", value: "value-1" }]);
    expect(await store.getStream("short")).toBeUndefined();
  });
});
