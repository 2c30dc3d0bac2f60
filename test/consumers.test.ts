/*
 * Consumers over HTTP, against a real in-process server: named server-side cursors on
 * an inbox's stream. Create/get/list/delete, acks that only move forward, lag and
 * its age, events lost to retention (and the 410 a read as that consumer gets),
 * reads that start after the committed offset, and who may use them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { bearer, type Envelope } from "./helpers/http.js";
import { openApiChecker, type ApiChecker } from "./helpers/openapi.js";
import type { ConsumerInfo } from "../dist/index.js";
import { ingestMany, numbered } from "./helpers/inbox.js";
import { waitForReaders } from "./helpers/readers.js";
import { waitUntil } from "./helpers/wait.js";

let server: TestServer;
/** Every consumer API reply is checked against the server's own /openapi.json. */
let documented: ApiChecker;

beforeAll(async () => {
  server = await startTestServer({ longPollTimeout: 2000 }, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
  documented = await openApiChecker(server.url);
});
afterAll(() => server.stop());

type Inbox = Awaited<ReturnType<TestServer["createInbox"]>>;

type ConsumerView = ConsumerInfo;

const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;

/** Calls the consumer API with `token` (the inbox's own token unless told otherwise). */
async function api(inbox: Inbox, method: string, path: string, body?: unknown, token = inbox.token): Promise<Response> {
  const response = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers${path}`, {
    method,
    headers: { ...bearer(token), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return documented.check(method, response);
}

async function json<T = ConsumerView>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

const getConsumer = async (inbox: Inbox, name: string) => json(await api(inbox, "GET", `/${name}`), 200);
const ack = async (inbox: Inbox, name: string, seq: number) => json(await api(inbox, "POST", `/${name}/ack`, { offset: offset(seq) }), 200);

async function readEvents(inbox: Inbox): Promise<Envelope[]> {
  const response = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: bearer(server.adminToken) });
  expect(response.status).toBe(200);
  return (await response.json()) as Envelope[];
}

/** Waits until the prune pass has left only events after `firstKept - 1`. */
async function waitForPrune(inbox: Inbox, firstKept: number): Promise<void> {
  await waitUntil(async () => (await readEvents(inbox))[0]?.seq === firstKept, `retention to prune up to #${firstKept}`);
}

describe("creating, reading, listing and deleting consumers", () => {
  it("PUT creates at the start of the stream by default (201), again returns it unchanged (200); GET, list and DELETE", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 3, numbered("e"));

    const created = await json(await api(inbox, "PUT", "/billing", {}), 201);
    expect(created).toMatchObject({
      name: "billing",
      committedSeq: 0,
      committedOffset: offset(0),
      lag: { events: 3, lostEvents: 0 },
      lastAckAt: null,
      lastSeenAt: null,
    });
    expect(Date.parse(created.createdAt)).toBeGreaterThan(Date.now() - 60_000);

    // An existing consumer is returned as it is: `from` does not move it.
    const again = await json(await api(inbox, "PUT", "/billing", { from: "now" }), 200);
    expect(again.committedSeq).toBe(0);
    expect(again.createdAt).toBe(created.createdAt);

    expect(await getConsumer(inbox, "billing")).toEqual(again);

    await json(await api(inbox, "PUT", "/analytics.v2", { from: "start" }), 201);
    await json(await api(inbox, "PUT", "/c_Z-9", { from: offset(2) }), 201);
    const list = await json<{ consumers: ConsumerView[] }>(await api(inbox, "GET", ""), 200);
    expect(list.consumers.map((c) => [c.name, c.committedSeq, c.lag.events])).toEqual([
      ["analytics.v2", 0, 3],
      ["billing", 0, 3],
      ["c_Z-9", 2, 1],
    ]);

    expect((await api(inbox, "DELETE", "/billing")).status).toBe(204);
    expect((await api(inbox, "GET", "/billing")).status).toBe(404);
    expect((await api(inbox, "DELETE", "/billing")).status).toBe(404);
    const after = await json<{ consumers: ConsumerView[] }>(await api(inbox, "GET", ""), 200);
    expect(after.consumers.map((c) => c.name)).toEqual(["analytics.v2", "c_Z-9"]);

    // Re-created after a delete, it starts afresh.
    expect((await json(await api(inbox, "PUT", "/billing", { from: "now" }), 201)).committedSeq).toBe(3);
  });

  it("PUT with from=now starts at the tail: nothing to catch up", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 4, numbered("e"));
    const consumer = await json(await api(inbox, "PUT", "/live-only", { from: "now" }), 201);
    expect(consumer).toMatchObject({
      committedSeq: 4,
      committedOffset: offset(4),
      lag: {
        events: 0,
        lostEvents: 0,
        seconds: 0,
        oldestUnackedAt: null,
        oldestUnackedAgeSeconds: null,
        behindHorizon: false,
        horizonOffset: offset(0),
      },
    });
    await ingestMany(inbox.ingestUrl, 1, numbered("e"));
    expect((await getConsumer(inbox, "live-only")).lag.events).toBe(1);
  });

  it("refuses bad names and bad starting points with 400; an empty list for a fresh inbox", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 2, numbered("e"));
    expect(await json<{ consumers: unknown[] }>(await api(inbox, "GET", ""), 200)).toEqual({ consumers: [] });
    for (const name of ["has%20space", "caf%C3%A9", "a%2Fb", "a%00b"]) {
      expect((await api(inbox, "PUT", `/${name}`, {})).status, name).toBe(400);
    }
    expect((await api(inbox, "PUT", "/c", { from: offset(3) })).status).toBe(400); // beyond the tail
    expect((await api(inbox, "PUT", "/c", { from: "yesterday" })).status).toBe(400);
    expect((await api(inbox, "PUT", "/c", { from: 1 })).status).toBe(400);
    expect((await api(inbox, "GET", "/c")).status).toBe(404);
    // 100 characters is the longest name.
    expect((await json(await api(inbox, "PUT", `/${"n".repeat(100)}`, {}), 201)).name).toBe("n".repeat(100));
  });

  it("refuses a name over 100 characters with 400 and the one documented error shape", async () => {
    const inbox = await server.createInbox();
    for (const [method, path, body] of [
      ["PUT", `/${"x".repeat(101)}`, {}],
      ["GET", `/${"x".repeat(101)}`, undefined],
      ["POST", `/${"x".repeat(101)}/ack`, { offset: offset(0) }],
    ] as const) {
      const response = await api(inbox, method, path, body);
      const reply = (await response.json()) as { error: unknown };
      expect({ status: response.status, error: reply.error }, `${method} ${path.slice(0, 10)}…`).toEqual({
        status: 400,
        error: { code: "bad_request", message: expect.any(String) },
      });
    }
    expect(await json<{ consumers: unknown[] }>(await api(inbox, "GET", ""), 200)).toEqual({ consumers: [] });
  });

  it("keeps the consumers of different inboxes apart, and removes them with their inbox", async () => {
    const a = await server.createInbox();
    const b = await server.createInbox();
    await ingestMany(a.ingestUrl, 3, numbered("e"));
    await ingestMany(b.ingestUrl, 1, numbered("e"));
    await json(await api(a, "PUT", "/same", {}), 201);
    await json(await api(b, "PUT", "/same", {}), 201);
    await ack(a, "same", 2);
    expect((await getConsumer(a, "same")).committedSeq).toBe(2);
    expect((await getConsumer(b, "same")).committedSeq).toBe(0);

    expect((await server.admin(`/api/inboxes/${a.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(a, "GET", "/same", undefined, server.adminToken)).status).toBe(404);
    expect((await api(a, "GET", "", undefined, server.adminToken)).status).toBe(404);
    expect((await getConsumer(b, "same")).committedSeq).toBe(0);
  });
});

describe("acks", () => {
  it("move the committed offset forward and never backwards", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 5, numbered("e"));
    await json(await api(inbox, "PUT", "/c", {}), 201);

    const first = await ack(inbox, "c", 3);
    expect(first).toMatchObject({ committedSeq: 3, committedOffset: offset(3), lag: { events: 2 } });
    expect(first.lastAckAt).not.toBeNull();

    const lower = await ack(inbox, "c", 1);
    expect(lower.committedSeq).toBe(3);
    expect(lower.lag.events).toBe(2);
    const same = await ack(inbox, "c", 3);
    expect(same.committedSeq).toBe(3);
    expect((await getConsumer(inbox, "c")).committedSeq).toBe(3);

    expect((await ack(inbox, "c", 5)).committedSeq).toBe(5);
    expect((await ack(inbox, "c", 0)).committedSeq).toBe(5);
    expect((await getConsumer(inbox, "c")).lag.events).toBe(0);
  });

  it("refuses offsets beyond the tail, sentinels and garbage with 400, leaving the consumer where it was", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 3, numbered("e"));
    await json(await api(inbox, "PUT", "/c", {}), 201);
    await ack(inbox, "c", 1);

    const beyond = await api(inbox, "POST", "/c/ack", { offset: offset(4) });
    expect(beyond.status).toBe(400);
    expect(((await beyond.json()) as { error: { code: string } }).error.code).toBe("bad_request");
    for (const body of [{ offset: "-1" }, { offset: "now" }, { offset: "12" }, { offset: 2 }, {}, { offset: offset(1e15) }]) {
      expect((await api(inbox, "POST", "/c/ack", body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await getConsumer(inbox, "c")).committedSeq).toBe(1);
  });

  it("lag counts the events after the committed offset, and its age is that of the oldest unacked event", async () => {
    const inbox = await server.createInbox();
    const empty = await json(await api(inbox, "PUT", "/c", {}), 201);
    expect(empty.lag).toEqual({
      events: 0,
      lostEvents: 0,
      seconds: 0,
      oldestUnackedAt: null,
      oldestUnackedAgeSeconds: null,
      behindHorizon: false,
      horizonOffset: offset(0),
    });

    await ingestMany(inbox.ingestUrl, 3, numbered("e"));
    const ageOfOldest = async () => (await getConsumer(inbox, "c")).lag.oldestUnackedAgeSeconds ?? 0;
    await waitUntil(async () => (await ageOfOldest()) >= 1, "the oldest unacked event to be old enough to round to 1 s");
    const events = await readEvents(inbox);

    const before = await getConsumer(inbox, "c");
    expect(before.lag.events).toBe(3);
    expect(before.lag.oldestUnackedAt).toBe(events[0]!.receivedAt);
    expect(before.lag.oldestUnackedAgeSeconds).toBeGreaterThanOrEqual(1);
    expect(before.lag.oldestUnackedAgeSeconds).toBeLessThan(30);
    // `seconds` is the same age: how far behind the consumer is in time.
    expect(before.lag.seconds).toBe(before.lag.oldestUnackedAgeSeconds);

    const partly = await ack(inbox, "c", 2);
    expect(partly.lag.events).toBe(1);
    expect(partly.lag.oldestUnackedAt).toBe(events[2]!.receivedAt);
    // Event 3 came a moment after event 1: its age reaches 1 s (rounded) on its own.
    await waitUntil(
      async () => ((await getConsumer(inbox, "c")).lag.oldestUnackedAgeSeconds ?? 0) >= 1,
      "event 3 to be old enough to round to 1 s",
    );
    const later = await getConsumer(inbox, "c");
    expect(later.lag.seconds).toBe(later.lag.oldestUnackedAgeSeconds);

    const done = await ack(inbox, "c", 3);
    expect(done.lag).toEqual({
      events: 0,
      lostEvents: 0,
      seconds: 0,
      oldestUnackedAt: null,
      oldestUnackedAgeSeconds: null,
      behindHorizon: false,
      horizonOffset: offset(0),
    });

    await ingestMany(inbox.ingestUrl, 1, numbered("fresh"));
    const fresh = await getConsumer(inbox, "c");
    expect(fresh.lag.events).toBe(1);
    expect(fresh.lag.oldestUnackedAgeSeconds).toBe(0);
    expect(fresh.lag.seconds).toBe(0);
  });
});

describe("retention", () => {
  it("reports events removed before they were acked as lostEvents, and a read as that consumer answers 410", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 3 } } });
    await ingestMany(inbox.ingestUrl, 2, numbered("e"));
    await json(await api(inbox, "PUT", "/slow", {}), 201);
    await json(await api(inbox, "PUT", "/fast", {}), 201);
    await ack(inbox, "slow", 1);
    await ingestMany(inbox.ingestUrl, 8, numbered("e")); // 10 events, only 8..10 are kept
    await ack(inbox, "fast", 9);
    await waitForPrune(inbox, 8);

    const slow = await getConsumer(inbox, "slow");
    expect(slow).toMatchObject({ committedSeq: 1, lag: { events: 3, lostEvents: 6, behindHorizon: true, horizonOffset: offset(7) } });
    // Its age is that of the oldest unacked event still retained (#8), not of a removed one.
    const retained = await readEvents(inbox);
    expect(slow.lag.oldestUnackedAt).toBe(retained[0]!.receivedAt);
    expect(slow.lag.seconds).toBe(slow.lag.oldestUnackedAgeSeconds);
    const fast = await getConsumer(inbox, "fast");
    expect(fast.lag).toMatchObject({ behindHorizon: false, horizonOffset: offset(7) });
    expect(fast).toMatchObject({ committedSeq: 9, lag: { events: 1, lostEvents: 0 } });

    for (const live of ["", "&live=long-poll"]) {
      const gone = await fetch(`${inbox.streamUrl}?consumer=slow${live}`, { headers: bearer(inbox.token) });
      expect(gone.status, live).toBe(410);
      const body = (await gone.json()) as { error: { code: string; earliestOffset: string } };
      expect(body.error).toMatchObject({ code: "gone", earliestOffset: offset(7) });
    }

    // Acking an offset retention already passed is allowed and shrinks what was lost...
    expect((await ack(inbox, "slow", 4)).lag).toMatchObject({ events: 3, lostEvents: 3 });
    // ...and once the consumer is at the earliest retained offset, reads work again.
    expect((await ack(inbox, "slow", 7)).lag).toMatchObject({ events: 3, lostEvents: 0 });
    const read = await fetch(`${inbox.streamUrl}?consumer=slow`, { headers: bearer(inbox.token) });
    expect(read.status).toBe(200);
    expect(((await read.json()) as Envelope[]).map((e) => e.seq)).toEqual([8, 9, 10]);

    // A consumer first used after pruning is created at the start of what is retained.
    const first = await fetch(`${inbox.streamUrl}?consumer=newcomer`, { headers: bearer(inbox.token) });
    expect(first.status).toBe(200);
    expect(((await first.json()) as Envelope[]).map((e) => e.seq)).toEqual([8, 9, 10]);
    expect(await getConsumer(inbox, "newcomer")).toMatchObject({ committedSeq: 7, lag: { events: 3, lostEvents: 0 } });
  });
});

describe("reading as a consumer", () => {
  it("a catch-up read without an offset starts after the committed offset; reading does not commit", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 5, numbered("e"));
    const read = async () => {
      const response = await fetch(`${inbox.streamUrl}?consumer=reader`, { headers: bearer(inbox.token) });
      expect(response.status).toBe(200);
      return { seqs: ((await response.json()) as Envelope[]).map((e) => e.seq), next: response.headers.get("stream-next-offset") };
    };
    // First use creates the consumer at the start.
    expect(await read()).toEqual({ seqs: [1, 2, 3, 4, 5], next: offset(5) });
    expect(await read()).toEqual({ seqs: [1, 2, 3, 4, 5], next: offset(5) });
    await ack(inbox, "reader", 3);
    expect(await read()).toEqual({ seqs: [4, 5], next: offset(5) });
    await ack(inbox, "reader", 5);
    expect(await read()).toEqual({ seqs: [], next: offset(5) });

    // The read is remembered as "last seen" (written in the background).
    await waitUntil(async () => (await getConsumer(inbox, "reader")).lastSeenAt !== null, "the read to be remembered as last seen");
  });

  it("a long-poll with ?consumer and no offset returns the events after the committed offset", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 5, numbered("e"));
    await json(await api(inbox, "PUT", "/lp", {}), 201);
    await ack(inbox, "lp", 3);

    const response = await fetch(`${inbox.streamUrl}?consumer=lp&live=long-poll`, { headers: bearer(inbox.token) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Envelope[]).map((e) => e.seq)).toEqual([4, 5]);
    expect(response.headers.get("stream-next-offset")).toBe(offset(5));
  });

  it("a long-poll with ?consumer at the committed tail waits for the next event, not an older one", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 4, numbered("e"));
    await json(await api(inbox, "PUT", "/lp", {}), 201);
    await ack(inbox, "lp", 4);

    const pending = fetch(`${inbox.streamUrl}?consumer=lp&live=long-poll`, { headers: bearer(inbox.token) });
    // The server has the long-poll (its start, the committed offset, is fixed by then).
    await waitForReaders(server, "long-poll");
    const [seq] = await ingestMany(inbox.ingestUrl, 1, numbered("wake"));
    const response = await pending;
    expect(response.status).toBe(200);
    const events = (await response.json()) as Envelope[];
    expect(events.map((e) => [e.seq, JSON.parse(e.body).n])).toEqual([[seq, "wake0"]]);
    // 200 with the new event: woken by the ingest (the 2 s timeout would answer 204).
    expect(seq).toBe(5);

    // With nothing new, the long-poll times out with 204 at the committed offset.
    await ack(inbox, "lp", 5);
    const idle = await fetch(`${inbox.streamUrl}?consumer=lp&live=long-poll`, { headers: bearer(inbox.token) });
    expect(idle.status).toBe(204);
    expect(idle.headers.get("stream-next-offset")).toBe(offset(5));
  });

  it("refuses a malformed consumer name on a read with 400", async () => {
    const inbox = await server.createInbox();
    const response = await fetch(`${inbox.streamUrl}?consumer=${encodeURIComponent("no spaces")}`, { headers: bearer(inbox.token) });
    expect(response.status).toBe(400);
  });
});

describe("access", () => {
  it("the inbox's own token can use every consumer call; another inbox's token, none (401)", async () => {
    const inbox = await server.createInbox();
    const other = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 2, numbered("e"));

    // Own token: the whole life cycle.
    await json(await api(inbox, "PUT", "/mine", {}), 201);
    expect((await ack(inbox, "mine", 1)).committedSeq).toBe(1);
    expect((await json<{ consumers: ConsumerView[] }>(await api(inbox, "GET", ""), 200)).consumers).toHaveLength(1);
    expect((await fetch(`${inbox.streamUrl}?consumer=mine`, { headers: bearer(inbox.token) })).status).toBe(200);

    const calls: Array<[string, string, unknown?]> = [
      ["GET", ""],
      ["GET", "/mine"],
      ["PUT", "/mine", {}],
      ["PUT", "/intruder", {}],
      ["POST", "/mine/ack", { offset: offset(2) }],
      ["DELETE", "/mine"],
    ];
    for (const token of [other.token, "thk_not-a-token", server.adminToken.slice(0, -1) + "x"]) {
      for (const [method, path, body] of calls) {
        const response = await api(inbox, method, path, body, token);
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
      expect((await fetch(`${inbox.streamUrl}?consumer=mine`, { headers: bearer(token) })).status).toBe(401);
    }
    // No token at all.
    expect((await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers/mine`)).status).toBe(401);

    // Nothing the refused calls asked for happened.
    expect(await getConsumer(inbox, "mine")).toMatchObject({ committedSeq: 1 });
    expect((await api(inbox, "GET", "/intruder")).status).toBe(404);

    // The admin token works too; a non-admin asking about a missing inbox gets 401, the admin 404.
    expect((await api(inbox, "GET", "/mine", undefined, server.adminToken)).status).toBe(200);
    const missing = { ...inbox, id: "AAAAAAAAAAAAAAAAAAAAAAAA" };
    expect((await api(missing, "GET", "/mine", undefined, inbox.token)).status).toBe(401);
    expect((await api(missing, "GET", "/mine", undefined, server.adminToken)).status).toBe(404);
    // The other inbox's token still works for its own inbox.
    expect((await api(other, "GET", "")).status).toBe(200);
  });
});
