/*
 * Compaction over HTTP, on the store under test (both, see vitest.config.ts): a pass
 * keeps the latest change per (type, key) and removes superseded changes and old
 * tombstones; reads before the horizon answer 410 with the earliest offset and the
 * snapshot's address (body and Link); a read from -1 reads the compacted log, page by
 * page; the snapshot after compaction is byte for byte the one before; a snapshot
 * cursor overtaken by H answers 410; an inbox with retention.compact keeps the latest
 * Stripe event per object, byte for byte.
 */
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { formatOffset } from "../dist/core/offsets.js";
import Database from "better-sqlite3";
import { join } from "node:path";
import postgres from "postgres";
import { rmSync } from "node:fs";
import { schemaFor, startTestServer, tempDir, testBackend, type TestServer } from "./helpers/server.js";
import { githubCheckRun, githubIssue, githubIssueComment, githubPing, githubPullRequest, stripeEvent } from "./helpers/webhook-payloads.js";
import { waitUntil } from "./helpers/wait.js";

interface Message {
  type?: string;
  key?: string;
  value?: unknown;
  headers: { operation?: string; control?: string; offset?: string };
}
interface Envelope {
  seq: number;
  body: string;
  bodyEncoding: "utf8" | "base64";
}
interface GoneBody {
  error: { code: string; earliestOffset: string; snapshot?: string };
}

const JSON_TYPE = { "content-type": "application/json" };
const seqOf = (offset: string) => Number(offset.split("_")[1]);

function materialize(messages: Message[]): Map<string, unknown> {
  const state = new MaterializedState();
  for (const message of messages) if (message.type !== undefined) state.apply(message as ChangeEvent);
  const out = new Map<string, unknown>();
  for (const type of state.types) for (const [key, value] of state.getType(type)) out.set(JSON.stringify([type, key]), value);
  return out;
}

const change = (key: string, operation: string, value?: unknown): Message =>
  ({ type: "item", key, ...(value === undefined ? {} : { value }), headers: { operation } }) as Message;

describe(`compaction (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    // Passes run only when a test asks (compactNow): reads before a pass must not race one.
    server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "3600000" } });
  });
  afterAll(async () => {
    await server.stop();
  });

  const compact = () => server.store.compactNow!();
  const put = (name: string, compactHeader: string) =>
    server.admin(`/v1/stream/${name}`, { method: "PUT", headers: { ...JSON_TYPE, "stream-state": "v1", "stream-compact": compactHeader } });
  const post = async (name: string, body: string) => {
    const response = await server.admin(`/v1/stream/${name}`, { method: "POST", headers: JSON_TYPE, body });
    expect(response.status, await response.clone().text()).toBe(204);
    return response.headers.get("stream-next-offset")!;
  };

  /** The log from `from` to the tail, page by page, with the offsets each page handed out. */
  async function readLog(name: string, from = "-1") {
    const messages: Message[] = [];
    const offsets: string[] = [];
    for (let offset = from; ;) {
      const response = await server.admin(`/v1/stream/${name}?offset=${offset}`);
      expect(response.status, await response.clone().text()).toBe(200);
      messages.push(...((await response.json()) as Message[]));
      offset = response.headers.get("stream-next-offset")!;
      offsets.push(offset);
      if (response.headers.get("stream-up-to-date") === "true") return { messages, offsets };
    }
  }

  /** Every page of a snapshot, as the raw text the server sent. */
  async function snapshotText(name: string): Promise<string[]> {
    const pages: string[] = [];
    for (let offset = "snapshot"; ;) {
      const response = await server.admin(`/v1/stream/${name}?offset=${offset}`);
      expect(response.status).toBe(200);
      pages.push(await response.text());
      offset = response.headers.get("stream-next-offset")!;
      if (!offset.startsWith("snapshot:")) return pages;
    }
  }

  async function expectGone(response: Response, name: string, horizon: number) {
    expect(response.status).toBe(410);
    const body = (await response.json()) as GoneBody;
    expect(body.error.code).toBe("gone");
    expect(body.error.earliestOffset).toBe(formatOffset(horizon));
    expect(body.error.snapshot).toBe(`/v1/stream/${name}?offset=snapshot`);
    expect(response.headers.get("link")).toBe(`</v1/stream/${name}?offset=snapshot>; rel="snapshot"`);
  }

  it("keeps the latest change per (type, key), removes the superseded ones, and leaves the state and the snapshot as they were", async () => {
    const name = "compact/basic";
    expect((await put(name, "key-frame; lag=0; tombstone-age=never")).headers.get("stream-compact")).toBe(
      "key-frame; lag=0; tombstone-age=never",
    );
    const raw = '{"n":12345678901234567890,"z":1,"a":"\\u00e9"}';
    await post(name, JSON.stringify([change("a", "insert", { v: 1 }), change("a", "update", { v: 2 }), change("b", "insert", { v: 1 })]));
    await post(
      name,
      `[${JSON.stringify(change("b", "delete"))},{"type":"item","key":"c","value":${raw},"headers":{"operation":"upsert"}}]`,
    );
    const tail = await post(name, JSON.stringify([change("a", "update", { v: 3 })]));
    const before = await readLog(name);
    const snapshotBefore = await snapshotText(name);

    const removed = await compact();
    expect(removed).toBe(3);
    const after = await readLog(name);
    expect(after.messages.map((message) => [message.key, message.headers.operation])).toEqual([
      ["b", "delete"],
      ["c", "upsert"],
      ["a", "update"],
    ]);
    expect(materialize(after.messages)).toEqual(materialize(before.messages));
    expect([...materialize(after.messages).keys()].sort()).toEqual(['["item","a"]', '["item","c"]']);
    expect(await snapshotText(name)).toEqual(snapshotBefore);
    expect(snapshotBefore.join("")).toContain(raw);
    expect((await server.admin(`/v1/stream/${name}`, { method: "HEAD" })).headers.get("stream-compact")).toBe(
      "key-frame; lag=0; tombstone-age=never",
    );

    // Before H = the tail: 410 on every read mode, at H the deltas go on.
    const horizon = seqOf(tail);
    await expectGone(await server.admin(`/v1/stream/${name}?offset=${formatOffset(1)}`), name, horizon);
    await expectGone(await server.admin(`/v1/stream/${name}?offset=${formatOffset(horizon - 1)}&live=long-poll`), name, horizon);
    await expectGone(await server.admin(`/v1/stream/${name}?offset=${formatOffset(0)}&live=sse`), name, horizon);
    const atHorizon = await server.admin(`/v1/stream/${name}?offset=${formatOffset(horizon)}`);
    expect(atHorizon.status).toBe(200);
    expect(await atHorizon.json()).toEqual([]);
    // A second pass with nothing new removes nothing.
    expect(await compact()).toBe(0);
  });

  it("property: after passes at random points, a read from -1 and a snapshot then its deltas both give the whole log's state", async () => {
    const operation = fc.record({
      key: fc.constantFrom("k0", "k1", "k2", "k3"),
      op: fc.constantFrom("insert", "update", "upsert", "delete"),
      value: fc.oneof(fc.integer(), fc.string({ maxLength: 6 }), fc.constant({ nested: [1, "two"] })),
    });
    const segment = fc.record({ changes: fc.array(operation, { minLength: 1, maxLength: 6 }), compactAfter: fc.boolean() });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 6 }), fc.constantFrom("0", "never"), async (segments, age) => {
        const name = `compact/property/${run++}`;
        expect((await put(name, `key-frame; lag=0; tombstone-age=${age}`)).status).toBe(201);
        const all: Message[] = [];
        for (const { changes, compactAfter } of segments) {
          const messages = changes.map(({ key, op, value }) => change(key, op, op === "delete" ? undefined : value));
          all.push(...messages);
          await post(name, JSON.stringify(messages));
          if (compactAfter) await compact();
        }
        const whole = materialize(all);
        expect(materialize((await readLog(name)).messages)).toEqual(whole);
        const pages = await snapshotText(name);
        const framed = pages.flatMap((text) => JSON.parse(text) as Message[]);
        const asOf = framed[0]!.headers.offset!;
        const deltas = (await readLog(name, asOf)).messages;
        expect(materialize([...framed, ...deltas])).toEqual(whole);
        await compact();
        expect(await snapshotText(name)).toEqual(pages);
        expect(materialize((await readLog(name)).messages)).toEqual(whole);
      }),
      { numRuns: 20 },
    );
  });

  it("removes tombstones older than the policy's age, with their key", async () => {
    const name = "compact/tombstones";
    expect((await put(name, "key-frame; lag=0; tombstone-age=0")).status).toBe(201);
    await post(name, JSON.stringify([change("gone", "insert", 1), change("kept", "insert", 2), change("gone", "delete")]));
    const snapshotBefore = await snapshotText(name);
    expect(await compact()).toBe(2);
    const { messages } = await readLog(name);
    expect(messages).toEqual([change("kept", "insert", 2)]);
    expect(await snapshotText(name)).toEqual(snapshotBefore);
    // The key can come back, and then goes the same way.
    await post(name, JSON.stringify([change("gone", "insert", 3)]));
    expect(materialize((await readLog(name)).messages)).toEqual(
      new Map([
        ['["item","kept"]', 2],
        ['["item","gone"]', 3],
      ]),
    );
  });

  it("keeps the newest `lag` messages out of reach, so a reader that close behind goes on", async () => {
    const name = "compact/lag";
    expect((await put(name, "key-frame; lag=2")).status).toBe(201);
    const first = await post(name, JSON.stringify([change("k", "insert", 1), change("k", "update", 2)]));
    await post(name, JSON.stringify([change("k", "update", 3), change("k", "update", 4)]));
    expect(await compact()).toBe(1);
    const { messages } = await readLog(name, first);
    expect(messages.map((message) => message.value)).toEqual([3, 4]);
    await expectGone(await server.admin(`/v1/stream/${name}?offset=${formatOffset(1)}`), name, 2);
  });

  it("reads the compacted log from -1 page by page while H stays, and answers 410 once H moved under the reader", async () => {
    const name = "compact/pages";
    expect((await put(name, "key-frame; lag=0; tombstone-age=never")).status).toBe(201);
    const keys = Array.from({ length: 1500 }, (_, index) => `k${String(index).padStart(4, "0")}`);
    await post(name, JSON.stringify(keys.map((key) => change(key, "insert", 1))));
    await post(name, JSON.stringify(keys.map((key) => change(key, "update", 2))));
    const full = materialize((await readLog(name)).messages);
    expect(await compact()).toBe(1500);
    const { messages, offsets } = await readLog(name);
    expect(messages).toHaveLength(1500);
    expect(materialize(messages)).toEqual(full);
    // The first page ended inside the compacted part: its offset names H, and sorts where its seq does.
    expect(offsets[0]!.split("_")).toHaveLength(3);
    expect(offsets.at(-1)).toBe(formatOffset(3000));

    // A reader half way through the compacted log, then a pass moves H: its next page is 410.
    const page = await server.admin(`/v1/stream/${name}?offset=-1`);
    const middle = page.headers.get("stream-next-offset")!;
    await post(name, JSON.stringify([change("k0000", "update", 3)]));
    expect(await compact()).toBe(1);
    await expectGone(await server.admin(`/v1/stream/${name}?offset=${middle}`), name, 3001);
  });

  it("answers 410 to a snapshot cursor whose X compaction overtook; offset=snapshot still works", async () => {
    const name = "compact/cursor";
    expect((await put(name, "key-frame; lag=0; tombstone-age=never")).status).toBe(201);
    const keys = Array.from({ length: 1200 }, (_, index) => `k${String(index).padStart(4, "0")}`);
    await post(name, JSON.stringify(keys.map((key) => change(key, "insert", { v: 1 }))));
    const first = await server.admin(`/v1/stream/${name}?offset=snapshot`);
    const cursor = first.headers.get("stream-next-offset")!;
    expect(cursor.startsWith("snapshot:")).toBe(true);
    const tail = await post(name, JSON.stringify(keys.map((key) => change(key, "update", { v: 2 }))));
    expect(await compact()).toBe(1200);
    await expectGone(await server.admin(`/v1/stream/${name}?offset=${encodeURIComponent(cursor)}`), name, seqOf(tail));
    const pages = await snapshotText(name);
    const inserts = pages.flatMap((text) => JSON.parse(text) as Message[]).filter((message) => message.type !== undefined);
    expect(inserts).toHaveLength(1200);
    expect(inserts.every((message) => (message.value as { v: number }).v === 2)).toBe(true);
  });

  /** Key index rows still held for deleted streams, read straight from the database under test. */
  async function indexRowsOfDeletedStreams(): Promise<number> {
    const query = `SELECT (SELECT COUNT(*) FROM state_keys k JOIN streams s ON s.id = k.stream_id WHERE s.deleted_at IS NOT NULL)
      + (SELECT COUNT(*) FROM state_history h JOIN streams s ON s.id = h.stream_id WHERE s.deleted_at IS NOT NULL) AS n`;
    if (testBackend === "sqlite") {
      const db = new Database(join(server.dataDir, "tailhook.db"), { readonly: true });
      try {
        return (db.prepare(query).get() as { n: number }).n;
      } finally {
        db.close();
      }
    }
    const sql = postgres(process.env.TAILHOOK_TEST_PG_URL!, { max: 1, connection: { search_path: schemaFor(server.dataDir) } });
    try {
      const [row] = await sql.unsafe<Array<{ n: string }>>(query);
      return Number(row!.n);
    } finally {
      await sql.end({ timeout: 2 });
    }
  }

  it("removes the key index rows of deleted streams and inboxes", async () => {
    const name = "compact/deleted";
    expect((await put(name, "key-frame")).status).toBe(201);
    await post(name, JSON.stringify([change("a", "insert", 1), change("a", "update", 2), change("b", "insert", 3)]));
    const inbox = await server.createInbox({ settings: { keyFrame: { preset: "stripe" } } });
    await fetch(inbox.ingestUrl, {
      method: "POST",
      headers: JSON_TYPE,
      body: stripeEvent("customer.created", { id: "cus_d", object: "customer" }),
    });
    expect((await server.admin(`/v1/stream/${name}`, { method: "DELETE" })).status).toBe(204);
    expect((await server.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" })).status).toBe(204);
    expect(await indexRowsOfDeletedStreams()).toBeGreaterThan(0);
    await compact();
    expect(await indexRowsOfDeletedStreams()).toBe(0);
  });

  it("keeps H, the compacted log and the snapshot across a restart", async () => {
    const dataDir = tempDir();
    const env = { TAILHOOK_PRUNE_INTERVAL_MS: "3600000" };
    let first: TestServer | undefined = await startTestServer({}, { dataDir, env });
    try {
      const admin = (target: TestServer, path: string, init: RequestInit = {}) => target.admin(`/v1/stream/compact/restart${path}`, init);
      expect(
        (await admin(first, "", { method: "PUT", headers: { ...JSON_TYPE, "stream-state": "v1", "stream-compact": "key-frame; lag=0" } }))
          .status,
      ).toBe(201);
      const body = JSON.stringify([change("a", "insert", 1), change("a", "update", 2), change("b", "insert", { nested: [1, "two"] })]);
      expect((await admin(first, "", { method: "POST", headers: JSON_TYPE, body })).status).toBe(204);
      expect(await first.store.compactNow!()).toBe(1);
      const snapshot = await (await admin(first, "?offset=snapshot")).text();
      const log = await (await admin(first, "?offset=-1")).text();
      await first.stop();
      first = undefined;
      const second = await startTestServer({}, { dataDir, env });
      try {
        expect(await (await admin(second, "?offset=snapshot")).text()).toBe(snapshot);
        expect(await (await admin(second, "?offset=-1")).text()).toBe(log);
        const gone = await admin(second, `?offset=${formatOffset(1)}`);
        expect(gone.status).toBe(410);
        expect(((await gone.json()) as GoneBody).error.earliestOffset).toBe(formatOffset(3));
        expect((await admin(second, "", { method: "HEAD" })).headers.get("stream-compact")).toBe("key-frame; lag=0; tombstone-age=86400");
      } finally {
        await second.stop();
      }
    } finally {
      await first?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("runs by itself in the periodic prune", async () => {
    const periodic = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
    try {
      const url = `${periodic.url}/v1/stream/compact/periodic`;
      const headers = { authorization: `Bearer ${periodic.adminToken}`, ...JSON_TYPE };
      const created = await fetch(url, {
        method: "PUT",
        headers: { ...headers, "stream-state": "v1", "stream-compact": "key-frame; lag=0" },
      });
      expect(created.status).toBe(201);
      const updates = Array.from({ length: 50 }, (_, index) => change(`k${index % 5}`, "upsert", index));
      expect((await fetch(url, { method: "POST", headers, body: JSON.stringify(updates) })).status).toBe(204);
      await waitUntil(async () => {
        const response = await fetch(`${url}?offset=-1`, { headers });
        return response.status === 200 && ((await response.json()) as unknown[]).length === 5;
      }, "the periodic pass to keep the latest change per key");
    } finally {
      await periodic.stop();
    }
  });

  it("refuses Stream-Compact without Stream-State and malformed policies", async () => {
    const plain = await server.admin("/v1/stream/compact/plain", {
      method: "PUT",
      headers: { ...JSON_TYPE, "stream-compact": "key-frame" },
    });
    expect(plain.status).toBe(400);
    expect((await put("compact/bad", "key-frame; lag=x")).status).toBe(400);
  });

  describe("an inbox with retention.compact", () => {
    interface Inbox {
      id: string;
      token: string;
      ingestUrl: string;
      streamUrl: string;
    }
    const read = (inbox: Inbox, query: string) =>
      fetch(`${inbox.streamUrl}?${query}`, { headers: { authorization: `Bearer ${inbox.token}` } });
    const send = async (inbox: Inbox, body: string) => {
      const response = await fetch(inbox.ingestUrl, { method: "POST", headers: JSON_TYPE, body });
      expect(response.status).toBe(200);
      return ((await response.json()) as { seq: number }).seq;
    };
    async function log(inbox: Inbox): Promise<Envelope[]> {
      const events: Envelope[] = [];
      for (let offset = "-1"; ;) {
        const response = await read(inbox, `offset=${offset}`);
        expect(response.status).toBe(200);
        events.push(...((await response.json()) as Envelope[]));
        offset = response.headers.get("stream-next-offset")!;
        if (response.headers.get("stream-up-to-date") === "true") return events;
      }
    }
    async function snapshot(inbox: Inbox): Promise<string> {
      const response = await read(inbox, "offset=snapshot");
      expect(response.status).toBe(200);
      return response.text();
    }

    it("keeps the latest Stripe event per object byte for byte, and events without a key; reads before H get 410 with the hint", async () => {
      const inbox = (await server.createInbox({
        settings: { keyFrame: { preset: "stripe" }, retention: { compact: true, compactLag: 0 } },
      })) as Inbox;
      const bodies = [
        stripeEvent("customer.created", { id: "cus_1", object: "customer", email: "a@example.com" }),
        stripeEvent("invoice.created", { id: "in_1", object: "invoice", amount_due: 100 }),
        JSON.stringify({ ping: true }),
        stripeEvent("customer.updated", { id: "cus_1", object: "customer", email: "b@example.com" }),
        stripeEvent("invoice.paid", { id: "in_1", object: "invoice", amount_due: 0 }),
        stripeEvent("customer.updated", { id: "cus_1", object: "customer", email: "c@example.com", note: "caf\u00e9 \u{1f600}" }),
      ];
      let last = 0;
      for (const body of bodies) last = await send(inbox, body);
      const snapshotBefore = await snapshot(inbox);
      expect(await compact()).toBe(3);

      const kept = await log(inbox);
      expect(kept.map((event) => event.seq)).toEqual([3, 5, 6]);
      expect(kept.map((event) => Buffer.from(event.body, event.bodyEncoding).toString("utf8"))).toEqual([bodies[2], bodies[4], bodies[5]]);
      expect(await snapshot(inbox)).toBe(snapshotBefore);

      const name = `inbox/${inbox.id}`;
      await expectGone(await read(inbox, `offset=${formatOffset(1)}`), name, last);
      await expectGone(await read(inbox, `offset=${formatOffset(2)}&live=sse`), name, last);
      const socket = await new Promise<number>((resolve) => {
        const ws = new WebSocket(
          `${server.url.replace(/^http/, "ws")}/v1/ws/inbox/${inbox.id}?token=${inbox.token}&offset=${formatOffset(1)}`,
        );
        ws.on("error", () => undefined);
        ws.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
        ws.on("open", () => resolve(101));
      });
      expect(socket).toBe(410);
      // A consumer that acked behind H is told too.
      const ack = await server.admin(`/api/inboxes/${inbox.id}/consumers/slow/ack`, {
        method: "POST",
        headers: JSON_TYPE,
        body: JSON.stringify({ offset: formatOffset(1) }),
      });
      expect(ack.status).toBe(200);
      await expectGone(await read(inbox, "consumer=slow"), name, last);

      const metrics = await (await server.admin("/metrics")).text();
      expect(Number(/^tailhook_compaction_removed_total (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
    });

    it("keeps the latest GitHub event per issue, pull request and check run byte for byte; pings stay", async () => {
      const inbox = (await server.createInbox({
        settings: { keyFrame: { preset: "github" }, retention: { compact: true, compactLag: 0 } },
      })) as Inbox;
      const bodies = [
        githubPing(),
        githubIssue("opened", 2_147_483_901, 41, "open", "Checkout fails"),
        githubPullRequest("opened", 1_934_000_111, 42, "a1b2c3"),
        githubCheckRun("created", 25_000_000_001, "queued", null),
        githubIssueComment(2_147_483_901, 41, 9001, "Seen on Safari too"),
        githubCheckRun("completed", 25_000_000_001, "completed", "success"),
        githubPullRequest("synchronize", 1_934_000_111, 42, "0a0b0c"),
        githubIssue("closed", 2_147_483_901, 41, "closed", "Checkout fails"),
      ];
      for (const body of bodies) await send(inbox, body);
      const snapshotBefore = await snapshot(inbox);
      // Superseded: the issue's opening and comment, the first check run and pull request events.
      expect(await compact()).toBe(4);
      const kept = await log(inbox);
      expect(kept.map((event) => event.seq)).toEqual([1, 6, 7, 8]);
      for (const event of kept) expect(Buffer.from(event.body, event.bodyEncoding).toString("utf8")).toBe(bodies[event.seq - 1]);
      expect(await snapshot(inbox)).toBe(snapshotBefore);
    });

    it("takes retention.compact on a PATCH too, and keeps the latest event per object from then on", async () => {
      const inbox = (await server.createInbox({ settings: { keyFrame: { preset: "stripe" } } })) as Inbox;
      for (const email of ["a", "b", "c"]) await send(inbox, stripeEvent("customer.updated", { id: "cus_9", object: "customer", email }));
      expect(await compact()).toBe(0);
      const patched = await server.admin(`/api/inboxes/${inbox.id}`, {
        method: "PATCH",
        headers: JSON_TYPE,
        body: JSON.stringify({ settings: { retention: { compact: true, compactLag: 0 } } }),
      });
      expect(patched.status, await patched.clone().text()).toBe(200);
      expect(await compact()).toBe(2);
      expect((await log(inbox)).map((event) => event.seq)).toEqual([3]);
    });
  });
});
