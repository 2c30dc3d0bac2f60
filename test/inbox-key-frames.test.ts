/*
 * Inbox key frames over HTTP, on the store under test (both, see vitest.config.ts):
 * an inbox with settings.keyFrame answers offset=snapshot on its stream with the
 * latest event envelope per entity as of X, byte for byte as delta reads show it,
 * in pages while events keep arriving, then the live deltas; the index survives a
 * restart, and a change of the key definition never mixes two definitions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { SseReader } from "./helpers/sse-reader.js";
import { githubCheckRun, githubIssue, githubIssueComment, githubPing, githubPullRequest, stripeEvent } from "./helpers/webhook-payloads.js";

interface Envelope {
  seq: number;
  id: string;
  headers: Array<[string, string]>;
  body: string;
  bodyEncoding: "utf8" | "base64";
}
interface Control {
  headers: { control: string; offset: string };
}
type Item = Envelope | Control;
interface Inbox {
  id: string;
  token: string;
  ingestUrl: string;
  streamUrl: string;
}

const isControl = (item: Item): item is Control => !Array.isArray(item.headers);
const seqOf = (offset: string) => Number(offset.split("_")[1]);

/** The entity a test expects, worked out from the body on its own (not with the server's code). */
type EntityOf = (body: string) => string | undefined;

const stripeEntity: EntityOf = (body) => {
  try {
    const object = (JSON.parse(body) as { data?: { object?: { id?: unknown; object?: unknown } } }).data?.object;
    return typeof object?.id === "string" && typeof object.object === "string" ? JSON.stringify([object.object, object.id]) : undefined;
  } catch {
    return undefined;
  }
};

const githubEntity: EntityOf = (body) => {
  try {
    const payload = JSON.parse(body) as Record<string, { id?: number } | undefined>;
    for (const type of ["pull_request", "issue", "check_run"]) {
      if (payload[type] !== undefined)
        return typeof payload[type].id === "number" ? JSON.stringify([type, String(payload[type].id)]) : undefined;
    }
  } catch {
    // not JSON: no entity
  }
  return undefined;
};

/** The latest envelope per entity among `log`, in (type, key) order of UTF-8 bytes. */
function latestPerEntity(log: Envelope[], entityOf: EntityOf): Envelope[] {
  const latest = new Map<string, Envelope>();
  for (const envelope of log) {
    const entity = entityOf(Buffer.from(envelope.body, envelope.bodyEncoding === "utf8" ? "utf8" : "base64").toString("utf8"));
    if (entity !== undefined) latest.set(entity, envelope);
  }
  const order = (entity: string) => (JSON.parse(entity) as string[]).map((part) => Buffer.from(part));
  return [...latest.entries()]
    .sort(([a], [b]) => {
      const [typeA, keyA] = order(a);
      const [typeB, keyB] = order(b);
      return Buffer.compare(typeA!, typeB!) || Buffer.compare(keyA!, keyB!);
    })
    .map(([, envelope]) => envelope);
}

describe("inbox key frames", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  const createInbox = (settings: Record<string, unknown>) => server.createInbox({ settings }) as Promise<Inbox>;
  const read = (inbox: Inbox, query: string) =>
    fetch(`${inbox.streamUrl}?${query}`, { headers: { authorization: `Bearer ${inbox.token}` } });

  /** POSTs one webhook; its seq once stored. */
  async function send(inbox: Inbox, body: string | Buffer, headers: Record<string, string> = { "content-type": "application/json" }) {
    const response = await fetch(inbox.ingestUrl, { method: "POST", headers, body });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    return (JSON.parse(text) as { seq: number }).seq;
  }

  /** The delta log from the start, as delta reads show it. */
  async function readLog(inbox: Inbox): Promise<Envelope[]> {
    const log: Envelope[] = [];
    for (let offset = "-1"; ;) {
      const response = await read(inbox, `offset=${offset}`);
      expect(response.status).toBe(200);
      log.push(...((await response.json()) as Envelope[]));
      offset = response.headers.get("stream-next-offset")!;
      if (response.headers.get("stream-up-to-date") === "true") return log;
    }
  }

  /** A whole snapshot, page by page (an optional step between pages); checks its framing. */
  async function readSnapshot(inbox: Inbox, between: () => Promise<void> = async () => undefined) {
    const pages: Item[][] = [];
    let offset = "snapshot";
    for (;;) {
      const response = await read(inbox, `offset=${offset}`);
      expect(response.status, await response.clone().text()).toBe(200);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("stream-state")).toBeNull();
      pages.push((await response.json()) as Item[]);
      offset = response.headers.get("stream-next-offset")!;
      if (!offset.startsWith("snapshot:")) break;
      await between();
    }
    const all = pages.flat();
    const start = all[0] as Control;
    expect(start.headers.control).toBe("snapshot-start");
    expect(all.at(-1)).toEqual({ headers: { control: "snapshot-end", offset: start.headers.offset } });
    expect(offset).toBe(start.headers.offset);
    const envelopes = all.slice(1, -1);
    expect(envelopes.some(isControl)).toBe(false);
    return { pages, envelopes: envelopes as Envelope[], asOf: start.headers.offset };
  }

  it("Stripe: the snapshot is the latest event per object as of X, byte for byte; events without a key are deltas only", async () => {
    const inbox = await createInbox({ keyFrame: { preset: "stripe" } });
    const bodies = [
      stripeEvent("customer.created", { id: "cus_QA1", object: "customer", email: "ana@example.com", balance: 0 }),
      stripeEvent("invoice.created", { id: "in_1PZ", object: "invoice", customer: "cus_QA1", amount_due: 12_00, status: "draft" }),
      stripeEvent("customer.updated", { id: "cus_QA1", object: "customer", email: "ana@example.org", name: "Ana Müller" }),
      stripeEvent("customer.created", { id: "cus_QB2", object: "customer", email: "bo@example.com" }),
      // A hand-written body: escapes, odd spacing and a number past 2^53 must come back as sent.
      '{ "id":"evt_raw", "type":"invoice.paid", "data": {"object": {"id":"in_1PZ","object":"invoice","amount_paid":12345678901234567890,"memo":"caf\\u00e9 \u00e9"}} }',
      "not json at all",
      JSON.stringify({ id: "evt_x", type: "balance.available", data: { object: { object: "balance", available: [] } } }),
      stripeEvent("invoice.finalized", { id: "in_2QA", object: "invoice", customer: "cus_QB2", status: "open" }),
      stripeEvent("customer.deleted", { id: "cus_QB2", object: "customer", deleted: true }),
    ];
    for (const body of bodies) await send(inbox, body);
    await send(inbox, Buffer.from([0xff, 0xfe, 0x00, 0x7b]), { "content-type": "application/octet-stream" });

    const snapshot = await readSnapshot(inbox);
    expect(seqOf(snapshot.asOf)).toBe(bodies.length + 1);
    const log = await readLog(inbox);
    const expected = latestPerEntity(log, stripeEntity);
    // customer cus_QA1 (seq 3), customer cus_QB2 (its delete, seq 9), invoice in_1PZ (seq 5), invoice in_2QA (seq 8).
    expect(snapshot.envelopes.map((envelope) => envelope.seq)).toEqual([3, 9, 5, 8]);
    expect(snapshot.envelopes).toEqual(expected);
    for (const envelope of snapshot.envelopes) {
      expect(Buffer.from(envelope.body, "utf8").equals(Buffer.from(bodies[envelope.seq - 1]!, "utf8"))).toBe(true);
    }
    // The snapshot's text of an event is the delta read's text of it (an envelope is JSON.stringify output).
    const snapshotText = await (await read(inbox, "offset=snapshot")).text();
    for (const envelope of expected) expect(snapshotText).toContain(JSON.stringify(envelope));
  });

  it("GitHub: issues, pull requests and check runs are told apart by type, even with equal ids; pings and form posts are deltas only", async () => {
    const inbox = await createInbox({ keyFrame: { preset: "github" } });
    const sent: string[] = [];
    const post = async (body: string, headers?: Record<string, string>) => {
      sent.push(body);
      await send(inbox, body, headers);
    };
    await post(githubPing());
    await post(githubIssue("opened", 2_147_483_901, 41, "open", "Checkout fails"));
    await post(githubPullRequest("opened", 1_934_000_111, 42, "a1b2c3"));
    await post(githubCheckRun("created", 25_000_000_001, "queued", null));
    await post(githubIssueComment(2_147_483_901, 41, 9001, "Seen on Safari too"));
    // A pull request whose id equals the issue's: another entity all the same.
    await post(githubPullRequest("opened", 2_147_483_901, 43, "d4e5f6"));
    await post(githubCheckRun("completed", 25_000_000_001, "completed", "success"));
    await post(githubPullRequest("synchronize", 1_934_000_111, 42, "0a0b0c"));
    await post(`payload=${encodeURIComponent(githubIssue("closed", 2_147_483_901, 41, "closed", "x"))}`, {
      "content-type": "application/x-www-form-urlencoded",
    });
    await post(githubIssue("opened", 2_147_483_999, 44, "open", "Typo in README"));

    const snapshot = await readSnapshot(inbox);
    const log = await readLog(inbox);
    expect(log).toHaveLength(sent.length);
    expect(snapshot.envelopes).toEqual(latestPerEntity(log, githubEntity));
    // check_run 25000000001 (7), issue 2147483901 (the comment, 5), issue 2147483999 (10), pull_request 1934000111 (8), 2147483901 (6).
    expect(snapshot.envelopes.map((envelope) => envelope.seq)).toEqual([7, 5, 10, 8, 6]);
    for (const envelope of snapshot.envelopes) expect(envelope.body).toBe(sent[envelope.seq - 1]);
  });

  it("pages while events keep arriving hold the latest event per entity as of X; the deltas after X follow", async () => {
    const inbox = await createInbox({ keyFrame: { preset: "stripe" } });
    const pad = "x".repeat(2000);
    const customer = (n: number, version: number) =>
      stripeEvent("customer.updated", { id: `cus_${String(n).padStart(5, "0")}`, object: "customer", version, pad });
    // 1,300 customers of ~2 KB each: more than one page by bytes (1 MiB) and by keys (1,000).
    for (let from = 0; from < 1300; from += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => send(inbox, customer(from + i, 0))));
    }
    let version = 1;
    const snapshot = await readSnapshot(inbox, async () => {
      // Between pages: updates of customers already listed, of ones still to come, and new ones.
      await Promise.all([
        send(inbox, customer(0, version)),
        send(inbox, customer(1299, version)),
        send(inbox, customer(5000 + version, 0)),
      ]);
      version++;
    });
    expect(snapshot.pages.length).toBeGreaterThanOrEqual(3);
    expect(version).toBeGreaterThanOrEqual(3);
    const log = await readLog(inbox);
    const asOfSeq = seqOf(snapshot.asOf);
    expect(asOfSeq).toBe(1300);
    expect(log.length).toBeGreaterThan(asOfSeq);
    expect(snapshot.envelopes).toEqual(
      latestPerEntity(
        log.filter((envelope) => envelope.seq <= asOfSeq),
        stripeEntity,
      ),
    );
    const deltas = await read(inbox, `offset=${snapshot.asOf}`);
    const after = (await deltas.json()) as Envelope[];
    expect(after.map((envelope) => envelope.seq)).toEqual(log.slice(asOfSeq).map((envelope) => envelope.seq));
    expect(latestPerEntity([...snapshot.envelopes, ...after], stripeEntity)).toEqual(latestPerEntity(log, stripeEntity));
  });

  it("offset=snapshot&live=sse sends the snapshot, then the live deltas; long-poll answers a snapshot page at once", async () => {
    const inbox = await createInbox({ keyFrame: { preset: "stripe" } });
    await send(inbox, stripeEvent("invoice.created", { id: "in_A", object: "invoice", status: "draft" }));
    await send(inbox, stripeEvent("invoice.paid", { id: "in_A", object: "invoice", status: "paid" }));
    const polled = await read(inbox, "offset=snapshot&live=long-poll");
    expect(polled.status).toBe(200);
    expect(polled.headers.get("stream-up-to-date")).toBe("true");
    expect(((await polled.json()) as Item[]).map((item) => (isControl(item) ? item.headers.control : item.seq))).toEqual([
      "snapshot-start",
      2,
      "snapshot-end",
    ]);
    const sse = await SseReader.open(`${inbox.streamUrl}?offset=snapshot&live=sse`, { authorization: `Bearer ${inbox.token}` });
    try {
      expect(sse.response.status).toBe(200);
      const received = () => sse.events.filter((event) => event.event === "data").flatMap((event) => JSON.parse(event.data) as Item[]);
      await sse.waitFor(() => received().some((item) => isControl(item) && item.headers.control === "snapshot-end"));
      const live = stripeEvent("invoice.voided", { id: "in_A", object: "invoice", status: "void" });
      await send(inbox, live);
      await send(inbox, "no key");
      await sse.waitFor(() => received().some((item) => !isControl(item) && item.seq === 4));
      const items = received();
      expect(items.map((item) => (isControl(item) ? item.headers.control : item.seq))).toEqual(["snapshot-start", 2, "snapshot-end", 3, 4]);
      expect((items[3] as Envelope).body).toBe(live);
      expect(items.slice(3)).toEqual((await readLog(inbox)).slice(2));
    } finally {
      sse.close();
    }
  });

  it('keys: the first pointer that exists wins, integers are their digits (42 and "42" are one entity), a header or a fixed type', async () => {
    const inbox = await createInbox({ keyFrame: { key: ["/order/id", "/id"], type: { value: "order" } } });
    await send(inbox, JSON.stringify({ id: 42, note: "top-level id" }));
    await send(inbox, JSON.stringify({ order: { id: "42" }, id: "other" }));
    await send(inbox, JSON.stringify({ order: { id: 7.5 }, id: "ignored: /order/id exists" }));
    await send(inbox, JSON.stringify({ id: 2 ** 60 }));
    await send(inbox, JSON.stringify({ id: { nested: true } }));
    await send(inbox, JSON.stringify({ id: "" }));
    await send(inbox, JSON.stringify({ id: 1e3 }));
    const snapshot = await readSnapshot(inbox);
    // order "1000" (seq 7), order "42" (seq 2): the rest have no usable key.
    expect(snapshot.envelopes.map((envelope) => envelope.seq)).toEqual([7, 2]);

    const byHeader = await createInbox({ keyFrame: { header: "X-Entity-Id", type: "/kind" } });
    await send(byHeader, JSON.stringify({ kind: "ticket" }), { "content-type": "application/json", "x-entity-id": "T-1" });
    await send(byHeader, JSON.stringify({ kind: "ticket", v: 2 }), { "content-type": "application/json", "x-entity-id": "T-1" });
    await send(byHeader, JSON.stringify({ kind: "ticket" }), { "content-type": "application/json" });
    await send(byHeader, "plain text", { "content-type": "text/plain", "x-entity-id": "T-2" });
    await send(byHeader, JSON.stringify({ kind: "user" }), { "content-type": "application/json", "x-entity-id": "T-1" });
    expect((await readSnapshot(byHeader)).envelopes.map((envelope) => envelope.seq)).toEqual([2, 5]);
  });

  it("a changed keyFrame empties the index (from then on, no mixing; old cursors refused); the same definition keeps it; clearing ends snapshots", async () => {
    const inbox = await createInbox({ keyFrame: { preset: "stripe" } });
    for (let i = 0; i < 1200; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => send(inbox, stripeEvent("customer.updated", { id: `cus_${i + j}`, object: "customer" }))),
      );
    }
    const first = await read(inbox, "offset=snapshot");
    const cursor = first.headers.get("stream-next-offset")!;
    expect(cursor.startsWith("snapshot:")).toBe(true);
    const patch = (settings: Record<string, unknown>) =>
      server.admin(`/api/inboxes/${inbox.id}`, {
        method: "PATCH",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ settings }),
      });

    // The preset written out is the same definition: the index and the cursor stay valid.
    const same = await patch({ keyFrame: { key: ["/data/object/id"], type: "/data/object/object" } });
    expect(same.status).toBe(200);
    expect((await read(inbox, `offset=${cursor}`)).status).toBe(200);

    expect((await patch({ keyFrame: { key: ["/data/object/customer"], type: { value: "customer" } } })).status).toBe(200);
    const stale = await read(inbox, `offset=${cursor}`);
    expect(stale.status).toBe(400);
    expect(await stale.text()).toContain("start again with offset=snapshot");
    expect((await readSnapshot(inbox)).envelopes).toEqual([]);
    const seq = await send(inbox, stripeEvent("invoice.created", { id: "in_9", object: "invoice", customer: "cus_7" }));
    expect((await readSnapshot(inbox)).envelopes.map((envelope) => envelope.seq)).toEqual([seq]);

    expect((await patch({ keyFrame: null })).status).toBe(200);
    const cleared = await read(inbox, "offset=snapshot");
    expect(cleared.status).toBe(400);
    expect(await cleared.text()).toContain("settings.keyFrame");
  });

  it("validation: bad keyFrame settings are refused with 400 and a reason; the setting shows on the inbox and in /openapi.json", async () => {
    const pointer = 'must be a JSON pointer (RFC 6901), e.g. "/data/object/id"';
    const refusals: Array<[unknown, string]> = [
      [{ preset: "shopify" }, "settings.keyFrame.preset must be one of stripe, github"],
      [{ preset: "stripe", type: "/x" }, "unknown field settings.keyFrame.type"],
      ["stripe", "settings.keyFrame must be a JSON object"],
      [{}, "settings.keyFrame.key must be a list of 1 to 16 JSON pointers (or a header: settings.keyFrame.header)"],
      [{ key: [] }, "settings.keyFrame.key must be a list of 1 to 16 JSON pointers (the first that exists wins)"],
      [{ key: ["data/id"] }, `settings.keyFrame.key[0] ${pointer}`],
      [{ key: ["/ok", "/a~2b"] }, `settings.keyFrame.key[1] ${pointer}`],
      [{ key: [{ pointer: "/id", type: "" }] }, "settings.keyFrame.key[0].type must be a non-empty string: the entity type it means"],
      [{ key: [{ pointer: "/id", type: "a\u0000b" }] }, "settings.keyFrame.key[0].type: type must not contain U+0000"],
      [{ key: ["/id"], header: "x-id" }, "settings.keyFrame takes either key or header, not both"],
      [{ header: "bad header" }, "settings.keyFrame.header must be a header name"],
      [{ key: ["/id"], type: 5 }, 'settings.keyFrame.type must be a JSON pointer (RFC 6901) into the body, e.g. "/data/object/id"'],
      [{ key: ["/id"], type: "kind" }, `settings.keyFrame.type ${pointer}`],
      [{ key: ["/id"], types: "/t" }, "unknown field settings.keyFrame.types"],
    ];
    for (const [keyFrame, message] of refusals) {
      const response = await server.admin("/api/inboxes", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ settings: { keyFrame } }),
      });
      expect(response.status, JSON.stringify(keyFrame)).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message, JSON.stringify(keyFrame)).toBe(message);
    }
    const compact = async (settings: Record<string, unknown>) => {
      const response = await server.admin("/api/inboxes", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ settings }),
      });
      expect(response.status).toBe(400);
      return response.text();
    };
    expect(await compact({ retention: { compact: true } })).toContain("settings.retention.compact needs settings.keyFrame");
    expect(await compact({ retention: { compact: "yes" }, keyFrame: { preset: "stripe" } })).toContain("compact");
    expect(await compact({ retention: { compactLag: 5 }, keyFrame: { preset: "stripe" } })).toContain("needs settings.retention.compact");

    const plain = await createInbox({});
    const noKeyFrame = await read(plain, "offset=snapshot");
    expect(noKeyFrame.status).toBe(400);
    expect(await noKeyFrame.text()).toContain("settings.keyFrame");

    const keyed = await createInbox({ keyFrame: { key: ["/a", { pointer: "/b/id", type: "b" }], type: "/kind" } });
    const shown = (await (await server.admin(`/api/inboxes/${keyed.id}`)).json()) as { settings: { keyFrame: unknown } };
    expect(shown.settings.keyFrame).toEqual({ key: ["/a", { pointer: "/b/id", type: "b" }], type: "/kind" });
    const openapi = await (await fetch(`${server.url}/openapi.json`)).text();
    expect(openapi).toContain('"keyFrame"');
    expect(openapi).toContain('"compact"');
  });
});

describe("inbox key frames across a restart", () => {
  it("keep the index: the snapshot before and after a restart agree, and later events update it", async () => {
    const first = await startTestServer();
    const inbox = (await first.createInbox({ settings: { keyFrame: { preset: "github" } } })) as Inbox;
    const post = async (body: string) => expect((await fetch(inbox.ingestUrl, { method: "POST", body })).status).toBe(200);
    await post(githubIssue("opened", 11, 1, "open", "a"));
    await post(githubIssue("edited", 11, 1, "open", "b"));
    await post(githubCheckRun("created", 12, "queued", null));
    const before = await (
      await fetch(`${inbox.streamUrl}?offset=snapshot`, { headers: { authorization: `Bearer ${inbox.token}` } })
    ).text();
    await first.close();
    const second = await startTestServer({}, { dataDir: first.dataDir });
    try {
      const streamUrl = inbox.streamUrl.replace(first.url, second.url);
      const snapshot = () => fetch(`${streamUrl}?offset=snapshot`, { headers: { authorization: `Bearer ${inbox.token}` } });
      expect(await (await snapshot()).text()).toBe(before);
      const ingest = inbox.ingestUrl.replace(first.url, second.url);
      expect((await fetch(ingest, { method: "POST", body: githubIssue("closed", 11, 1, "closed", "b") })).status).toBe(200);
      const items = (await (await snapshot()).json()) as Item[];
      expect(items.map((item) => (isControl(item) ? item.headers.control : item.seq))).toEqual(["snapshot-start", 3, 4, "snapshot-end"]);
    } finally {
      await second.stop();
    }
  });
});
