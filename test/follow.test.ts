/*
 * The one follow loop (live/follow.ts) under every live transport: readers at one
 * position share one store read per wake (none on SQLite, whose commits hand their
 * messages over), a reader at the tail waits without asking the store, and StreamWaiters remembers the tails it was told for followed streams,
 * so a commit between a follower's read and its wait is never missed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LiveStreams, type FollowItem } from "../dist/live/follow.js";
import { StreamWaiters } from "../dist/live/stream-waiters.js";
import { bearer } from "./helpers/http.js";
import { startTestServer, testBackend, type TestServer } from "./helpers/server.js";
import { countReads } from "./helpers/store-reads.js";
import { SseReader } from "./helpers/sse-reader.js";

const READERS = 50;

let server: TestServer;

beforeAll(async () => {
  // Keep-alives every 100 ms: idle readers wake often, and must not read the store for it.
  server = await startTestServer({}, { env: { TAILHOOK_SSE_KEEPALIVE_MS: "100" } });
});
afterAll(() => server.stop());

async function ingest(url: string, body: unknown): Promise<number> {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { seq: number }).seq;
}

function controls(reader: SseReader) {
  return reader.events.filter((event) => event.event === "control");
}

describe("SSE readers sharing a position", () => {
  it(`${READERS} readers at one position cost about one store read per wake, not ${READERS}`, async () => {
    const inbox = await server.createInbox();
    await ingest(inbox.ingestUrl, { n: 0 });
    const readers = await Promise.all(
      Array.from({ length: READERS }, () => SseReader.open(`${inbox.streamUrl}?offset=now&live=sse`, bearer(inbox.token))),
    );
    try {
      // Each reader is at the tail once its first control event came.
      await Promise.all(readers.map((reader) => reader.waitFor(() => controls(reader).length >= 1, 20_000)));
      const reads = countReads(server.store);
      try {
        await ingest(inbox.ingestUrl, { n: 1 });
        await Promise.all(readers.map((reader) => reader.waitFor((events) => events.some((e) => e.event === "data"), 20_000)));
        const { readMessages, getStreamById } = { ...reads.counts };
        for (const reader of readers) {
          const data = reader.events.filter((event) => event.event === "data");
          expect(data.map((event) => (JSON.parse(event.data) as Array<{ body: string }>).map((e) => e.body))).toEqual([
            [JSON.stringify({ n: 1 })],
          ]);
        }
        if (testBackend === "sqlite") {
          // The commit handed its event to the readers at the tail: no read at all.
          expect({ readMessages, getStreamById }).toEqual({ readMessages: 0, getStreamById: 0 });
        } else {
          // PostgreSQL tells tails only: one shared read of the page and one of the stream
          // row (at most one more if a reader woke behind a read already under way).
          expect(readMessages).toBeGreaterThanOrEqual(1);
          expect(readMessages).toBeLessThanOrEqual(2);
          expect(getStreamById).toBeLessThanOrEqual(2);
        }
      } finally {
        reads.restore();
      }
    } finally {
      for (const reader of readers) reader.close();
    }
  });

  it("an idle reader at the tail sends keep-alives without reading the store", async () => {
    const inbox = await server.createInbox();
    await ingest(inbox.ingestUrl, { n: 0 });
    const reader = await SseReader.open(`${inbox.streamUrl}?offset=now&live=sse`, bearer(inbox.token));
    try {
      await reader.waitFor(() => controls(reader).length >= 1);
      const reads = countReads(server.store);
      try {
        const keepAlives = () => reader.text.split(": keep-alive\n\n").length - 1;
        const before = keepAlives();
        await reader.waitFor(() => keepAlives() >= before + 3);
        expect(reads.counts).toEqual({ readMessages: 0, getStreamById: 0 });
      } finally {
        reads.restore();
      }
    } finally {
      reader.close();
    }
  });
});

describe("LiveStreams.follow over the real store", () => {
  it("yields the pages, marks up-to-date once, says idle, takes new commits, and ends on delete", async () => {
    const inbox = await server.createInbox();
    await ingest(inbox.ingestUrl, { n: 1 });
    await ingest(inbox.ingestUrl, { n: 2 });
    const view = (await (await server.admin(`/api/inboxes/${inbox.id}`)).json()) as { lastSeq: number };
    expect(view.lastSeq).toBe(2);
    const waiters = new StreamWaiters();
    server.store.onCommit((tails) => waiters.notify(tails));
    const live = new LiveStreams(server.store, waiters);
    const stream = await server.store.getStream(`inbox/${inbox.id}`);
    expect(stream).toBeDefined();
    const seen: string[] = [];
    const describeItem = (item: FollowItem) =>
      item.kind === "page"
        ? `page ${item.messages.map((m) => m.seq).join(",")} up-to-date=${item.upToDate}`
        : item.kind === "up-to-date"
          ? `up-to-date ${item.seq}`
          : item.kind;
    const controller = new AbortController();
    let idles = 0;
    for await (const item of live.follow(stream!.id, { afterSeq: 0, idleMs: () => 20, signal: controller.signal })) {
      if (item.kind === "idle") {
        idles++;
        if (idles === 1) void ingest(inbox.ingestUrl, { n: 3 });
        if (idles === 3) void server.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" });
        continue;
      }
      seen.push(describeItem(item));
    }
    expect(seen).toEqual(["page 1,2 up-to-date=true", "up-to-date 2", "page 3 up-to-date=true", "up-to-date 3", "deleted"]);
    waiters.shutdown();
  });

  it("ends with shutdown when the waiters shut down, and with nothing when the signal aborts", async () => {
    const inbox = await server.createInbox();
    const stream = (await server.store.getStream(`inbox/${inbox.id}`))!;
    const waiters = new StreamWaiters();
    const live = new LiveStreams(server.store, waiters);
    const kinds: string[] = [];
    for await (const item of live.follow(stream.id, { afterSeq: 0, idleMs: () => 60_000, signal: new AbortController().signal })) {
      kinds.push(item.kind);
      if (item.kind === "up-to-date") waiters.shutdown();
    }
    expect(kinds).toEqual(["up-to-date", "shutdown"]);

    const controller = new AbortController();
    const other = new LiveStreams(server.store, new StreamWaiters());
    const more: string[] = [];
    for await (const item of other.follow(stream.id, { afterSeq: 0, idleMs: () => 60_000, signal: controller.signal })) {
      more.push(item.kind);
      controller.abort();
    }
    expect(more).toEqual(["up-to-date"]);
  });
});

describe("StreamWaiters remembers the tails of followed streams", () => {
  it("a wait behind a tail told after tracking began returns at once, with no query", async () => {
    const waiters = new StreamWaiters();
    const release = waiters.track(7);
    // The commit lands between the follower's read (tail 4) and its wait.
    waiters.notify(new Map([[7, 5]]));
    expect(await waiters.wait(7, 4, 60_000)).toBe("data");
    // At the remembered tail it really waits, and the next commit wakes it.
    const waiting = waiters.wait(7, 5, 60_000);
    waiters.notify(new Map([[7, 6]]));
    expect(await waiting).toBe("data");
    // A late, lower report does not move the remembered tail back.
    waiters.notify(new Map([[7, 3]]));
    expect(waiters.knownTail(7)).toBe(6);
    release();
    expect(waiters.knownTail(7)).toBeUndefined();
    waiters.shutdown();
  });

  it("forgets a stream only when its last follower releases it, and does not remember untracked streams", async () => {
    const waiters = new StreamWaiters();
    waiters.notify(new Map([[1, 9]]));
    expect(waiters.knownTail(1)).toBeUndefined();
    expect(await waiters.wait(1, 4, 10)).toBe("timeout");
    const first = waiters.track(2);
    const second = waiters.track(2);
    waiters.notify(new Map([[2, 3]]));
    first();
    first();
    expect(waiters.knownTail(2)).toBe(3);
    expect(waiters.streamIds()).toEqual([2]);
    second();
    expect(waiters.knownTail(2)).toBeUndefined();
    expect(waiters.streamIds()).toEqual([]);
    waiters.shutdown();
  });
});
