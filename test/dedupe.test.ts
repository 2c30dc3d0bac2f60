/*
 * Deduplication per inbox (settings.dedupe), against a real server on either store:
 * a repeated delivery id within the window gets the same 2xx as the first delivery
 * (same event id and seq), is not appended again, and is counted as `deliveries` on
 * the original event; concurrent repeats append once; the entry survives a restart;
 * past the window the id is appended again; the entry outlives its event's retention.
 * Plus unit tests of the key extraction.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { rmSync } from "node:fs";
import { dedupeKeyOf, parseDedupeSettings } from "../dist/core/dedupe.js";
import type { CapturedRequest } from "../dist/core/types.js";
import { readAll } from "./helpers/http.js";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";

function captured(rawHeaders: string[], body: string | Buffer = ""): CapturedRequest {
  return {
    id: "evt_test",
    receivedAt: Date.now(),
    method: "POST",
    path: "",
    query: "",
    rawHeaders,
    remoteAddr: "127.0.0.1",
    body: typeof body === "string" ? Buffer.from(body) : body,
  };
}

describe("dedupeKeyOf", () => {
  it("reads each header preset case-insensitively, the first occurrence, trimmed", () => {
    const cases: Array<[string, string]> = [
      ["github", "X-GitHub-Delivery"],
      ["standard-webhooks", "webhook-id"],
      ["shopify", "X-Shopify-Webhook-Id"],
      ["idempotency-key", "Idempotency-Key"],
    ];
    for (const [preset, header] of cases) {
      const settings = parseDedupeSettings(preset);
      expect(dedupeKeyOf(settings, captured([header.toUpperCase(), " abc-1 ", header, "second"]))).toBe("abc-1");
      expect(dedupeKeyOf(settings, captured(["Other", "abc-1"]))).toBeUndefined();
      expect(dedupeKeyOf(settings, captured([header, "   "]))).toBeUndefined();
    }
  });

  it("reads the Stripe preset's /id from a JSON body, and nothing from a body that is not JSON", () => {
    const stripe = parseDedupeSettings("stripe");
    expect(dedupeKeyOf(stripe, captured([], '{"id":"evt_1","object":"event"}'))).toBe("evt_1");
    expect(dedupeKeyOf(stripe, captured([], "id=evt_1"))).toBeUndefined();
    expect(dedupeKeyOf(stripe, captured([], Buffer.from([0x7b, 0xff, 0xfe, 0x7d])))).toBeUndefined();
    expect(dedupeKeyOf(stripe, captured([], ""))).toBeUndefined();
    expect(dedupeKeyOf(stripe, captured([], '{"object":"event"}'))).toBeUndefined();
    expect(dedupeKeyOf(stripe, captured([], '{"id":{"nested":1}}'))).toBeUndefined();
    expect(dedupeKeyOf(stripe, captured([], '{"id":42}'))).toBe("42");
    expect(dedupeKeyOf(stripe, captured([], '["evt_1"]'))).toBeUndefined();
  });

  it("follows pointer escapes ~0 and ~1 and array indexes", () => {
    const body = JSON.stringify({ "a/b": { "m~n": "escaped" }, list: [{ id: "second" }, { id: "x" }], "": { "": "empty" } });
    expect(dedupeKeyOf(parseDedupeSettings({ jsonPointer: "/a~1b/m~0n" }), captured([], body))).toBe("escaped");
    expect(dedupeKeyOf(parseDedupeSettings({ jsonPointer: "/list/1/id" }), captured([], body))).toBe("x");
    expect(dedupeKeyOf(parseDedupeSettings({ jsonPointer: "/list/01/id" }), captured([], body))).toBeUndefined();
    expect(dedupeKeyOf(parseDedupeSettings({ jsonPointer: "/list/2/id" }), captured([], body))).toBeUndefined();
    expect(dedupeKeyOf(parseDedupeSettings({ jsonPointer: "//" }), captured([], body))).toBe("empty");
    // "~1" decodes after "~0" would turn "~01" into "/": it must stay "~1".
    expect(dedupeKeyOf(parseDedupeSettings({ jsonPointer: "/~01" }), captured([], '{"~1":"tilde-one","/":"slash"}'))).toBe("tilde-one");
  });

  it("takes a custom header, and refuses settings it cannot use", () => {
    const custom = parseDedupeSettings({ header: "X-Delivery-Id", windowSeconds: 60 });
    expect(custom).toEqual({ header: "x-delivery-id", windowSeconds: 60 });
    expect(dedupeKeyOf(custom, captured(["x-delivery-id", "d1"]))).toBe("d1");
    expect(parseDedupeSettings("github")).toEqual({ preset: "github", header: "x-github-delivery", windowSeconds: 7 * 24 * 3600 });
    for (const bad of [
      "gitlab",
      {},
      { preset: "github", header: "x" },
      { header: "bad header" },
      { jsonPointer: "id" },
      { jsonPointer: "/a~2" },
      { preset: "stripe", windowSeconds: 0 },
      { preset: "stripe", windowSeconds: 31 * 24 * 3600 },
      { preset: "stripe", extra: 1 },
      7,
      null,
      ["github"],
    ]) {
      expect(() => parseDedupeSettings(bad), JSON.stringify(bad)).toThrow();
    }
  });

  it("takes no key longer than 512 characters", () => {
    const settings = parseDedupeSettings("idempotency-key");
    expect(dedupeKeyOf(settings, captured(["Idempotency-Key", "k".repeat(512)]))).toBe("k".repeat(512));
    expect(dedupeKeyOf(settings, captured(["Idempotency-Key", "k".repeat(513)]))).toBeUndefined();
  });
});

interface Ack {
  status: number;
  text: string;
  headers: Headers;
}

async function post(url: string, headers: Record<string, string>, body: string): Promise<Ack> {
  const response = await fetch(url, { method: "POST", headers, body });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

async function eventJson(server: TestServer, inboxId: string, seq: number): Promise<Record<string, unknown> & { status: number }> {
  const response = await server.admin(`/api/inboxes/${inboxId}/events/${seq}`);
  return { status: response.status, ...((await response.json()) as Record<string, unknown>) };
}

describe("dedupe over HTTP", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
  });
  afterAll(() => server.stop());

  const headerPresets: Array<[string, string]> = [
    ["github", "X-GitHub-Delivery"],
    ["standard-webhooks", "webhook-id"],
    ["shopify", "X-Shopify-Webhook-Id"],
    ["idempotency-key", "Idempotency-Key"],
  ];

  for (const [preset, header] of headerPresets) {
    it(`${preset}: a repeated ${header} gets the first ack, is not appended, and is counted`, async () => {
      const inbox = await server.createInbox({ settings: { dedupe: preset } });
      const first = await post(inbox.ingestUrl, { [header]: "delivery-1", "content-type": "application/json" }, '{"n":1}');
      expect(first.status).toBe(200);
      const firstAck = JSON.parse(first.text) as { ok: boolean; id: string; seq: number };
      expect(firstAck.seq).toBe(1);
      // A redelivery: same id, even with other bytes (a new timestamp, a new signature).
      const again = await post(inbox.ingestUrl, { [header]: "delivery-1", "content-type": "application/json" }, '{"n":1,"retry":true}');
      expect(again.status).toBe(200);
      expect(JSON.parse(again.text)).toEqual(firstAck);
      const third = await post(inbox.ingestUrl, { [header]: "delivery-1" }, "x");
      expect(JSON.parse(third.text)).toEqual(firstAck);
      const other = await post(inbox.ingestUrl, { [header]: "delivery-2" }, "{}");
      expect(JSON.parse(other.text)).toMatchObject({ seq: 2 });
      const keyless = await post(inbox.ingestUrl, {}, "{}");
      expect(JSON.parse(keyless.text)).toMatchObject({ seq: 3 });

      const { events } = await readAll(inbox.streamUrl, inbox.token);
      expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
      expect(events[0]!.id).toBe(firstAck.id);
      expect(events[0]!.body).toBe('{"n":1}');
      expect(await eventJson(server, inbox.id, 1)).toMatchObject({ status: 200, id: firstAck.id, deliveries: 3 });
      expect(await eventJson(server, inbox.id, 2)).toMatchObject({ status: 200, deliveries: 1 });
      expect((await eventJson(server, inbox.id, 3)).deliveries).toBeUndefined();
      const stream = (await server.store.getStream(`inbox/${inbox.id}`))!;
      expect(await server.store.findDelivery(stream.id, "delivery-1")).toMatchObject({ seq: 1, id: firstAck.id, deliveries: 3 });
    });
  }

  it("stripe: a repeated event /id in the body gets the first ack and is counted", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: { preset: "stripe" } } });
    const event = (id: string, attempt: number) => JSON.stringify({ id, object: "event", type: "charge.succeeded", attempt });
    const first = await post(inbox.ingestUrl, { "content-type": "application/json", "stripe-signature": "t=1,v1=a" }, event("evt_1", 1));
    const again = await post(inbox.ingestUrl, { "content-type": "application/json", "stripe-signature": "t=2,v1=b" }, event("evt_1", 2));
    expect(first.status).toBe(200);
    expect(again.text).toBe(first.text);
    const second = await post(inbox.ingestUrl, { "content-type": "application/json" }, event("evt_2", 1));
    expect(JSON.parse(second.text)).toMatchObject({ seq: 2 });
    const notJson = await post(inbox.ingestUrl, {}, "evt_1");
    expect(JSON.parse(notJson.text)).toMatchObject({ seq: 3 });
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events).toHaveLength(3);
    expect(await eventJson(server, inbox.id, 1)).toMatchObject({ deliveries: 2, body: event("evt_1", 1) });
  });

  it("a duplicate gets the inbox's configured reply, like the first delivery", async () => {
    const response = { status: 202, headers: { "x-reply": "configured" }, body: "thanks" };
    const inbox = await server.createInbox({ settings: { dedupe: "github", response } });
    const first = await post(inbox.ingestUrl, { "X-GitHub-Delivery": "g-1" }, "{}");
    const again = await post(inbox.ingestUrl, { "X-GitHub-Delivery": "g-1" }, "{}");
    for (const reply of [first, again]) {
      expect(reply.status).toBe(202);
      expect(reply.text).toBe("thanks");
      expect(reply.headers.get("x-reply")).toBe("configured");
    }
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(1);
  });

  it("many concurrent deliveries of one id append exactly one event, all acked with its seq", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: "standard-webhooks" } });
    await post(inbox.ingestUrl, {}, "before");
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(inbox.ingestUrl, { "webhook-id": i % 2 === 0 ? "msg_even" : "msg_odd" }, `attempt ${i}`)),
    );
    expect(replies.every((reply) => reply.status === 200)).toBe(true);
    const acks = replies.map((reply) => JSON.parse(reply.text) as { id: string; seq: number });
    const evens = new Set(acks.filter((_, i) => i % 2 === 0).map((ack) => `${ack.id}/${ack.seq}`));
    const odds = new Set(acks.filter((_, i) => i % 2 === 1).map((ack) => `${ack.id}/${ack.seq}`));
    expect(evens.size).toBe(1);
    expect(odds.size).toBe(1);
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(new Set(events.slice(1).map((event) => `${event.id}/${event.seq}`))).toEqual(new Set([...evens, ...odds]));
    expect(await eventJson(server, inbox.id, 2)).toMatchObject({ deliveries: 20 });
    expect(await eventJson(server, inbox.id, 3)).toMatchObject({ deliveries: 20 });
  });

  it("appends submitted together (one write batch) with one key append once", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: "idempotency-key" } });
    const stream = (await server.store.getStream(`inbox/${inbox.id}`))!;
    const options = { dedupe: { key: "batch-key", windowMs: 60_000 } };
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        server.store.appendEvent(stream.id, { ...captured([], `copy ${i}`), id: `evt_copy_${i}` }, options),
      ),
    );
    expect(results[0]).toEqual({ status: "appended", seq: 1 });
    expect(results.slice(1)).toEqual(Array.from({ length: 9 }, () => ({ status: "duplicate", seq: 1, id: "evt_copy_0" })));
    expect(await server.store.findDelivery(stream.id, "batch-key")).toMatchObject({ seq: 1, id: "evt_copy_0", deliveries: 10 });
    expect((await readAll(inbox.streamUrl, inbox.token)).events.map((event) => event.body)).toEqual(["copy 0"]);
  });

  it("an append with a delivery id to a deleted inbox's stream is not_found, even for a known id", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: "github" } });
    const stream = (await server.store.getStream(`inbox/${inbox.id}`))!;
    const options = { dedupe: { key: "known", windowMs: 60_000 } };
    expect(await server.store.appendEvent(stream.id, captured([], "first"), options)).toEqual({ status: "appended", seq: 1 });
    expect((await server.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" })).status).toBe(204);
    expect(await server.store.appendEvent(stream.id, captured([], "again"), options)).toEqual({ status: "not_found" });
    expect(await server.store.appendEvent(stream.id, captured([], "new"), { dedupe: { key: "new", windowMs: 60_000 } })).toEqual({
      status: "not_found",
    });
  });

  it("past the window the same id is appended again, and the expired entry is pruned", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: { header: "X-Delivery", windowSeconds: 1 } } });
    const first = JSON.parse((await post(inbox.ingestUrl, { "x-delivery": "d" }, "one")).text) as { seq: number };
    expect(first.seq).toBe(1);
    // Each redelivery inside the window is answered with seq 1; the first one after it is appended.
    await vi.waitFor(
      async () => {
        const ack = JSON.parse((await post(inbox.ingestUrl, { "x-delivery": "d" }, "later")).text) as { seq: number };
        expect(ack.seq).toBe(2);
      },
      { timeout: 10_000, interval: 100 },
    );
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => [event.seq, event.body])).toEqual([
      [1, "one"],
      [2, "later"],
    ]);
    const stream = (await server.store.getStream(`inbox/${inbox.id}`))!;
    expect(await server.store.findDelivery(stream.id, "d")).toMatchObject({ seq: 2, deliveries: 1 });
    // The prune runs every 50 ms here: the entry goes once its window is over.
    await vi.waitFor(async () => expect(await server.store.findDelivery(stream.id, "d")).toBeUndefined(), {
      timeout: 10_000,
      interval: 100,
    });
  });

  it("an event removed by retention is still answered with its seq while its entry is in the window", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: "github", retention: { maxEvents: 1 } } });
    const first = await post(inbox.ingestUrl, { "X-GitHub-Delivery": "old" }, "old");
    await post(inbox.ingestUrl, { "X-GitHub-Delivery": "new" }, "new");
    await vi.waitFor(async () => expect((await eventJson(server, inbox.id, 1)).status).toBe(410), { timeout: 10_000, interval: 50 });
    const again = await post(inbox.ingestUrl, { "X-GitHub-Delivery": "old" }, "old");
    expect(again.text).toBe(first.text);
    expect((await readAll(inbox.streamUrl, inbox.token)).events.map((event) => event.seq)).toEqual([2]);
  });

  it("settings.dedupe shows in the inbox and can be removed with null", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: { jsonPointer: "/id", windowSeconds: 3600 } } });
    const view = (await (await server.admin(`/api/inboxes/${inbox.id}`)).json()) as { settings: unknown };
    expect(view.settings).toEqual({ dedupe: { jsonPointer: "/id", windowSeconds: 3600 } });
    const bad = await server.admin(`/api/inboxes/${inbox.id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: { dedupe: "nope" } }),
    });
    expect(bad.status).toBe(400);
    const patched = await server.admin(`/api/inboxes/${inbox.id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: { dedupe: null } }),
    });
    expect(((await patched.json()) as { settings: unknown }).settings).toEqual({});
    await post(inbox.ingestUrl, {}, '{"id":"same"}');
    await post(inbox.ingestUrl, {}, '{"id":"same"}');
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(2);
  });
});

describe("dedupe across a restart", () => {
  it("a delivery seen before the restart is still a duplicate after it", async () => {
    const dataDir = tempDir();
    try {
      const before = await startTestServer({}, { dataDir });
      const inbox = await before.createInbox({ settings: { dedupe: "shopify" } });
      const first = await post(inbox.ingestUrl, { "X-Shopify-Webhook-Id": "sh-1" }, "{}");
      await before.close();
      const after = await startTestServer({}, { dataDir });
      try {
        const ingestUrl = `${after.url}/h/${inbox.id}`;
        const again = await post(ingestUrl, { "X-Shopify-Webhook-Id": "sh-1" }, "{}");
        expect(again.status).toBe(200);
        expect(again.text).toBe(first.text);
        const other = await post(ingestUrl, { "X-Shopify-Webhook-Id": "sh-2" }, "{}");
        expect(JSON.parse(other.text)).toMatchObject({ seq: 2 });
        expect((await readAll(`${after.url}/v1/stream/inbox/${inbox.id}`, inbox.token)).events).toHaveLength(2);
        expect(await eventJson(after, inbox.id, 1)).toMatchObject({ deliveries: 2 });
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
