/*
 * Followers at the tail are handed what the commit wrote (live/recent-tails.ts), on
 * the store under test (both, see vitest.config.ts): on SQLite with no store read at
 * all, on PostgreSQL (which tells tails only) by reading as before. Either way a
 * follower sees exactly what the store holds, in order and with no gap, however many
 * followers at however many positions; and anything but a plain append (retention,
 * compaction, delete, close) or a position behind what is kept makes the follower
 * read the store, so it ends with gone, deleted or closed just as before.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LiveStreams, type FollowItem, type FollowOptions } from "../dist/live/follow.js";
import { StreamWaiters } from "../dist/live/stream-waiters.js";
import type { StoredMessage } from "../dist/core/types.js";
import { startTestServer, testBackend, type TestServer } from "./helpers/server.js";
import { countReads } from "./helpers/store-reads.js";
import { stripeEvent } from "./helpers/webhook-payloads.js";

let server: TestServer;
let waiters: StreamWaiters;
let live: LiveStreams;

beforeAll(async () => {
  server = await startTestServer();
  // A LiveStreams of our own over the server's real store, fed by its commits as the server's is.
  waiters = new StreamWaiters();
  server.store.onCommit((tails, detail) => waiters.notify(tails, detail));
  live = new LiveStreams(server.store, waiters);
});
afterAll(async () => {
  waiters.shutdown();
  await server.stop();
});

async function newInbox(body: Record<string, unknown> = {}) {
  const inbox = await server.createInbox(body);
  const stream = await server.store.getStream(`inbox/${inbox.id}`);
  return { ...inbox, streamId: stream!.id };
}

/** A Durable Streams stream holding one message ("one"). */
async function newDsStream(prefix: string, ttlSeconds: number | null) {
  const name = `${prefix}-${Date.now()}`;
  const created = await server.store.general!.createStream({
    name,
    contentType: "application/octet-stream",
    ttlSeconds,
    expiresAt: null,
    closed: false,
    messages: [Buffer.from("one")],
    fork: null,
    stateProtocol: null,
  });
  expect(created.status).toBe("created");
  return { name, streamId: (await server.store.getStream(name))!.id };
}

async function ingest(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { method: "POST", body, headers });
  expect(response.status).toBe(200);
  return ((await response.json()) as { seq: number }).seq;
}

/** What the store holds after afterSeq up to and with toSeq, read page by page. */
async function stored(streamId: number, afterSeq: number, toSeq: number): Promise<StoredMessage[]> {
  const messages: StoredMessage[] = [];
  for (let from = afterSeq; from < toSeq;) {
    const page = await server.store.readMessages(streamId, from, { maxMessages: 500, maxBytes: 4 * 1024 * 1024 });
    if (page.length === 0) break;
    messages.push(...page.filter((message) => message.seq <= toSeq));
    from = page.at(-1)!.seq;
  }
  return messages;
}

function follow(streamId: number, start: Partial<FollowOptions> & { afterSeq: number }) {
  const controller = new AbortController();
  const items = live.follow(streamId, { idleMs: () => 50, signal: controller.signal, ...start } as FollowOptions);
  return { items, stop: () => controller.abort() };
}

/** Pulls items until `done` says stop; returns what was pulled. */
async function pull(items: AsyncGenerator<FollowItem>, done: (item: FollowItem) => boolean): Promise<FollowItem[]> {
  const pulled: FollowItem[] = [];
  for (;;) {
    const next = await items.next();
    if (next.done) return pulled;
    pulled.push(next.value);
    if (done(next.value)) return pulled;
  }
}

const pageMessages = (items: FollowItem[]) => items.flatMap((item) => (item.kind === "page" ? item.messages : []));
/** A message with its bytes as base64: compared as one string instead of byte by byte (much faster for large bodies). */
const exact = (messages: StoredMessage[]) =>
  messages.map(({ seq, createdAt, data, meta }) => ({ seq, createdAt, meta, data: data.toString("base64") }));
const isTerminal = (item: FollowItem) => ["gone", "closed", "deleted", "shutdown"].includes(item.kind);

describe("a follower at the tail", () => {
  it("is handed appended events byte for byte, with no store read on SQLite", async () => {
    const inbox = await newInbox();
    const first = await ingest(inbox.ingestUrl, "{}");
    const { items, stop } = follow(inbox.streamId, { afterSeq: first });
    try {
      expect((await pull(items, (item) => item.kind === "up-to-date")).at(-1)).toMatchObject({ kind: "up-to-date", seq: first });
      const bodies = [
        Buffer.from(JSON.stringify({ caf: "caf\u00e9 \u{1f600}" })),
        Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x0a]),
        Buffer.alloc(0),
        Buffer.from("x".repeat(70_000)),
      ];
      const reads = countReads(server.store);
      let handed: StoredMessage[];
      let last = first;
      try {
        for (const [index, body] of bodies.entries()) {
          last = await ingest(`${inbox.ingestUrl}/path/${index}?q=${index}`, body, { "x-Mixed-Case": `v${index}`, "x-dup": "a" });
        }
        handed = pageMessages(await pull(items, (item) => item.kind === "page" && item.lastSeq >= last));
      } finally {
        reads.restore();
      }
      expect(handed.map((message) => message.data.toString("base64"))).toEqual(bodies.map((body) => body.toString("base64")));
      expect(exact(handed)).toEqual(exact(await stored(inbox.streamId, first, last)));
      if (testBackend === "sqlite") expect(reads.counts).toEqual({ readMessages: 0, getStreamById: 0 });
    } finally {
      stop();
    }
  });

  it("is handed a verified inbox's events with the verdict the writer stored", async () => {
    const secret = "live-verify-secret";
    const inbox = await newInbox({ settings: { verify: { scheme: "github", secrets: [secret] } } });
    const sign = (body: string) => ({ "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` });
    const first = await ingest(inbox.ingestUrl, "{}", sign("{}"));
    const { items, stop } = follow(inbox.streamId, { afterSeq: first });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      const reads = countReads(server.store);
      let handed: StoredMessage[];
      let last: number;
      try {
        await ingest(inbox.ingestUrl, '{"n":1}', sign('{"n":1}'));
        last = await ingest(inbox.ingestUrl, '{"n":2}', sign("forged"));
        handed = pageMessages(await pull(items, (item) => item.kind === "page" && item.lastSeq >= last));
      } finally {
        reads.restore();
      }
      expect(exact(handed)).toEqual(exact(await stored(inbox.streamId, first, last)));
      const verdicts = handed.map((message) => (JSON.parse(message.meta!) as unknown[])[6]);
      expect(verdicts).toEqual([
        { verification: { scheme: "github", ok: true, reason: "signature matches secret 1 of 1" } },
        { verification: { scheme: "github", ok: false, reason: "signature does not match the secret" } },
      ]);
      if (testBackend === "sqlite") expect(reads.counts).toEqual({ readMessages: 0, getStreamById: 0 });
    } finally {
      stop();
    }
  });

  it("is handed Durable Streams appends byte for byte, with the stream as the store has it, with no store read on SQLite", async () => {
    const general = server.store.general!;
    const { name, streamId } = await newDsStream("recent-tails-handed", 3600);
    const { items, stop } = follow(streamId, { afterSeq: 1 });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      const append = { name, contentType: "application/octet-stream", streamSeq: null, producer: null, close: false };
      const reads = countReads(server.store);
      let pulled: FollowItem[];
      try {
        await general.appendStream({ ...append, messages: [Buffer.from("two"), Buffer.from([0xff, 0x00])] });
        await general.appendStream({ ...append, messages: [Buffer.from("four")] });
        pulled = await pull(items, (item) => item.kind === "page" && item.lastSeq >= 4);
      } finally {
        reads.restore();
      }
      expect(exact(pageMessages(pulled))).toEqual(exact(await stored(streamId, 1, 4)));
      const lastPage = pulled.at(-1) as Extract<FollowItem, { kind: "page" }>;
      expect(lastPage.stream).toEqual(await server.store.getStreamById(streamId));
      if (testBackend === "sqlite") expect(reads.counts).toEqual({ readMessages: 0, getStreamById: 0 });
    } finally {
      stop();
    }
  });

  it("followers at one position share one page object", async () => {
    const inbox = await newInbox();
    const first = await ingest(inbox.ingestUrl, "{}");
    const followers = Array.from({ length: 5 }, () => follow(inbox.streamId, { afterSeq: first }));
    try {
      for (const { items } of followers) await pull(items, (item) => item.kind === "up-to-date");
      const last = await ingest(inbox.ingestUrl, '{"n":1}');
      const pages = await Promise.all(followers.map(({ items }) => pull(items, (item) => item.kind === "page")));
      const handed = pages.map((pulled) => pulled.at(-1));
      expect(handed[0]).toMatchObject({ kind: "page", lastSeq: last });
      for (const page of handed) expect(page).toBe(handed[0]);
    } finally {
      for (const { stop } of followers) stop();
    }
  });
});

describe("many followers under concurrent appends", () => {
  it("each gets every message after its position once, in order, as the store holds it", async () => {
    const inbox = await newInbox();
    let tail = 0;
    for (let i = 0; i < 20; i++) tail = await ingest(inbox.ingestUrl, JSON.stringify({ backlog: i }));
    // Known once every sender is answered; a follower stops when it has read up to it.
    const end: { seq?: number } = {};
    const starts = [0, 0, 3, 7, 10, 10, 15, 19, 20, 20, 20, 20];
    const followers = starts.map(async (afterSeq) => {
      const { items, stop } = follow(inbox.streamId, { afterSeq });
      try {
        const got: StoredMessage[] = [];
        for await (const item of items) {
          if (item.kind === "page") got.push(...item.messages);
          if (isTerminal(item)) break;
          if (end.seq !== undefined && (got.at(-1)?.seq ?? afterSeq) >= end.seq) break;
        }
        return { afterSeq, got };
      } finally {
        stop();
      }
    });
    const senders = Array.from({ length: 8 }, async (_, sender) => {
      for (let i = 0; i < 25; i++) await ingest(inbox.ingestUrl, JSON.stringify({ sender, i, pad: "p".repeat(i * 50) }));
    });
    await Promise.all(senders);
    const target = tail + 200;
    end.seq = target;
    const results = await Promise.all(followers);
    const all = exact(await stored(inbox.streamId, 0, target));
    expect(all.map((message) => message.seq)).toEqual(Array.from({ length: target }, (_, i) => i + 1));
    for (const { afterSeq, got } of results) expect(exact(got)).toEqual(all.slice(afterSeq));
  });
});

describe("what makes a follower read the store", () => {
  it("retention pruning what it has not read yet: gone, as for a fresh follower there", async () => {
    const inbox = await newInbox({ settings: { retention: { maxEvents: 3 } } });
    const first = await ingest(inbox.ingestUrl, "{}");
    const { items, stop } = follow(inbox.streamId, { afterSeq: first });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      for (let i = 0; i < 10; i++) await ingest(inbox.ingestUrl, JSON.stringify({ i }));
      await (server.store as unknown as { prune(): Promise<number> }).prune();
      const ended = (await pull(items, isTerminal)).at(-1);
      expect(ended).toMatchObject({ kind: "gone", snapshot: false });
      expect((ended as { earliestSeq: number }).earliestSeq).toBeGreaterThan(first);
      const fresh = follow(inbox.streamId, { afterSeq: first });
      expect((await pull(fresh.items, isTerminal)).at(-1)).toEqual(ended);
    } finally {
      stop();
    }
  });

  it("compaction moving the horizon past it: gone with the snapshot, as for a fresh follower there", async () => {
    const inbox = await newInbox({ settings: { keyFrame: { preset: "stripe" }, retention: { compact: true, compactLag: 0 } } });
    const customer = (email: string) => stripeEvent("customer.updated", { id: "cus_1", object: "customer", email });
    const first = await ingest(inbox.ingestUrl, customer("a@example.com"));
    const { items, stop } = follow(inbox.streamId, { afterSeq: first });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      for (const email of ["b@example.com", "c@example.com", "d@example.com"]) await ingest(inbox.ingestUrl, customer(email));
      expect(await server.store.compactNow!()).toBeGreaterThan(0);
      const ended = (await pull(items, isTerminal)).at(-1);
      expect(ended).toMatchObject({ kind: "gone", snapshot: true });
      const fresh = follow(inbox.streamId, { afterSeq: first });
      expect((await pull(fresh.items, isTerminal)).at(-1)).toEqual(ended);
    } finally {
      stop();
    }
  });

  it("the inbox deleted after it was handed events: deleted", async () => {
    const inbox = await newInbox();
    const first = await ingest(inbox.ingestUrl, "{}");
    const { items, stop } = follow(inbox.streamId, { afterSeq: first });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      const next = await ingest(inbox.ingestUrl, '{"n":1}');
      expect(pageMessages(await pull(items, (item) => item.kind === "up-to-date")).map((m) => m.seq)).toEqual([next]);
      expect((await server.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" })).status).toBe(204);
      expect((await pull(items, isTerminal)).at(-1)).toEqual({ kind: "deleted", soft: false });
    } finally {
      stop();
    }
  });

  it("a Durable Streams append and close: the messages, then closed at the tail", async () => {
    const general = server.store.general!;
    const { name, streamId } = await newDsStream("recent-tails", null);
    const { items, stop } = follow(streamId, { afterSeq: 1 });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      const append = { name, contentType: "application/octet-stream", streamSeq: null, producer: null };
      await general.appendStream({ ...append, messages: [Buffer.from("two"), Buffer.from([0xff])], close: false });
      const pulled = await pull(items, (item) => item.kind === "up-to-date");
      expect(pageMessages(pulled).map((message) => message.data)).toEqual([Buffer.from("two"), Buffer.from([0xff])]);
      await general.appendStream({ ...append, messages: [], close: true });
      expect((await pull(items, isTerminal)).at(-1)).toMatchObject({ kind: "closed", seq: 3, stream: { closed: true, tailSeq: 3 } });
    } finally {
      stop();
    }
  });

  it("a follower behind what is kept reads the store, and gets every message", async () => {
    const inbox = await newInbox();
    const first = await ingest(inbox.ingestUrl, "{}");
    const { items, stop } = follow(inbox.streamId, { afterSeq: first });
    try {
      await pull(items, (item) => item.kind === "up-to-date");
      // More bytes than the recent tail keeps (1 MiB): the oldest of them are gone from memory.
      let last = first;
      for (let i = 0; i < 5; i++) last = await ingest(inbox.ingestUrl, String(i).repeat(300_000));
      const expected = exact(await stored(inbox.streamId, first, last));
      const reads = countReads(server.store);
      try {
        expect(exact(pageMessages(await pull(items, (item) => item.kind === "page" && item.lastSeq >= last)))).toEqual(expected);
      } finally {
        reads.restore();
      }
      expect(reads.counts.readMessages).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });
});
