/*
 * Recovery in the client library, on both stores: tail() and tailStream() from a key
 * frame (`from: "snapshot"`) read the snapshot page by page while a producer keeps
 * appending, then the deltas after X, and end at exactly the producer's state; after a
 * 410 caused by retention, onGone "snapshot" re-syncs from a fresh key frame, "earliest"
 * goes on from the earliest retained event, and "throw" throws.
 */
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import { afterEach, describe, expect, it } from "vitest";
import {
  decodeEnvelopeBody,
  TailhookClient,
  TailhookGoneError,
  TailhookProtocolError,
  type LossNotice,
  type StreamItem,
  type TailItem,
} from "../dist/index.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitUntil } from "./helpers/wait.js";

const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;
const seqOf = (value: string) => Number(value.split("_")[1]);
const STATE = { "content-type": "application/json", "stream-state": "v1" };
/** More keys than one snapshot page examines (1000), so a key frame takes several pages. */
const MANY = 1100;

type Change = { type: string; key: string; value?: unknown; headers: { operation: string } };

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

async function server(env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const started = await startTestServer({ longPollTimeout: 3000 }, { env });
  servers.push(started);
  return started;
}

/** A client whose fetch runs `between` after each snapshot page arrived and before the client reads it. */
function clientWithHook(running: TestServer, token: string, between: () => Promise<void>): TailhookClient {
  const hooked: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (String(input).includes("offset=snapshot")) await between();
    return response;
  };
  return new TailhookClient({ server: running.url, token, fetch: hooked });
}

function flatten(state: MaterializedState): Map<string, unknown> {
  const flat = new Map<string, unknown>();
  for (const type of state.types) for (const [key, value] of state.getType(type)) flat.set(`${type}/${key}`, value);
  return flat;
}

/** Checks the shape every key-frame read must have: reset, snapshot items, snapshot-end at X, then deltas X+1, X+2, … */
function expectFramed(kinds: Array<{ kind: string; offset?: string }>, cause: string): number {
  const reset = kinds[0] as { kind: string; offset: string; cause?: string };
  expect(reset).toMatchObject({ kind: "reset", cause });
  const end = kinds.findIndex((item) => item.kind === "snapshot-end");
  expect(end).toBeGreaterThan(0);
  expect(kinds[end]!.offset).toBe(reset.offset);
  expect(kinds.slice(1, end).every((item) => item.kind === "snapshot")).toBe(true);
  const deltas = kinds.slice(end + 1);
  const x = seqOf(reset.offset);
  expect(deltas.map((item) => item.offset)).toEqual(deltas.map((_, index) => offset(x + 1 + index)));
  return end - 1;
}

describe("tailStream() from a key frame", () => {
  it("reads a state stream's paged snapshot while appends go on, then the deltas, and ends at the producer's exact state", async () => {
    const running = await server();
    const name = "recovery/state";
    const admin = running.adminToken;
    expect((await running.admin(`/v1/stream/${name}`, { method: "PUT", headers: STATE })).status).toBe(201);
    const producer = new MaterializedState();
    let appended = 0;
    const append = async (changes: Change[]) => {
      const response = await running.admin(`/v1/stream/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(changes),
      });
      expect(response.status, await response.text()).toBe(204);
      for (const change of changes) producer.apply(change as ChangeEvent);
      appended += changes.length;
    };
    const change = (n: number, key: number): Change =>
      n % 7 === 3
        ? { type: "row", key: `k${key}`, headers: { operation: "delete" } }
        : { type: "row", key: `k${key}`, value: { n, pad: "x".repeat(n % 50) }, headers: { operation: n % 2 ? "upsert" : "update" } };
    await append(
      Array.from({ length: MANY }, (_, key) => ({ type: "row", key: `k${key}`, value: { n: key }, headers: { operation: "insert" } })),
    );

    // Between snapshot pages, more changes commit (keys before and after the page's position).
    let pagesRead = 0;
    const client = clientWithHook(running, admin, async () => {
      pagesRead++;
      await append(Array.from({ length: 20 }, (_, i) => change(appended + i, (pagesRead * 37 + i * 53) % (MANY + 50))));
    });
    const consumer = new MaterializedState();
    const items: Array<StreamItem<Change>> = [];
    const controller = new AbortController();
    const reading = (async () => {
      for await (const item of client.tailStream<Change>(name, { from: "snapshot", signal: controller.signal })) {
        items.push(item);
        if (item.kind === "reset") consumer.clear();
        else if (item.kind === "snapshot" || item.kind === "message") consumer.apply(item.message as ChangeEvent);
      }
    })();
    // A producer running alongside the reader, independent of its pages.
    for (let round = 0; round < 10; round++) await append([change(appended, round * 11), change(appended + 1, MANY + round)]);
    const tail = (await running.admin(`/v1/stream/${name}`, { method: "HEAD" })).headers.get("stream-next-offset")!;
    await waitUntil(
      () => items.at(-1)?.kind === "message" && (items.at(-1) as { offset: string }).offset === tail,
      "the reader at the tail",
    );
    controller.abort();
    await reading;

    expect(pagesRead).toBeGreaterThanOrEqual(2);
    const snapshotSize = expectFramed(items, "start");
    expect(snapshotSize).toBeGreaterThan(1000);
    expect(flatten(consumer)).toEqual(flatten(producer));
    // And the whole log from the start, read by the same client, says the same.
    const whole = new MaterializedState();
    for await (const item of new TailhookClient({ server: running.url, token: admin }).tailStream<Change>(name)) {
      if (item.kind === "message") whole.apply(item.message as ChangeEvent);
      if (item.kind === "message" && item.offset === tail) break;
    }
    expect(flatten(whole)).toEqual(flatten(producer));
  });

  it("starts a key frame over (reset, cause restart) when its cursor is refused: the stream was created again mid-read", async () => {
    const running = await server();
    const name = "recovery/recreated";
    const insert = (key: string, value: unknown): Change => ({ type: "row", key, value, headers: { operation: "insert" } });
    const first = Array.from({ length: MANY }, (_, key) => insert(`k${key}`, key));
    const create = (body: Change[]) => running.admin(`/v1/stream/${name}`, { method: "PUT", headers: STATE, body: JSON.stringify(body) });
    expect((await create(first)).status).toBe(201);
    let recreated = false;
    const client = clientWithHook(running, running.adminToken, async () => {
      if (recreated) return;
      recreated = true;
      expect((await running.admin(`/v1/stream/${name}`, { method: "DELETE" })).status).toBe(204);
      expect((await create([insert("new", 1), insert("other", 2)])).status).toBe(201);
    });
    const items: Array<StreamItem<Change>> = [];
    for await (const item of client.tailStream<Change>(name, { from: "snapshot" })) {
      items.push(item);
      if (item.kind === "snapshot-end") break;
    }
    const resets = items.filter((item) => item.kind === "reset");
    expect(resets).toEqual([
      { kind: "reset", offset: offset(MANY), cause: "start" },
      { kind: "reset", offset: offset(2), cause: "restart" },
    ]);
    // After the second reset: exactly the new stream's state, then its end.
    const after = items.slice(items.indexOf(resets[1]!) + 1);
    expect(after).toEqual([
      { kind: "snapshot", message: insert("new", 1) },
      { kind: "snapshot", message: insert("other", 2) },
      { kind: "snapshot-end", offset: offset(2) },
    ]);
  });

  it("numbers the messages of a JSON stream from Stream-Next-Offset and ends when the stream is closed and read to its end", async () => {
    const running = await server();
    const create = await running.admin("/v1/stream/recovery/closed", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ a: 1 }, { a: 2 }]),
    });
    expect(create.status).toBe(201);
    const close = await running.admin("/v1/stream/recovery/closed", {
      method: "POST",
      headers: { "content-type": "application/json", "stream-closed": "true" },
      body: JSON.stringify([{ a: 3 }]),
    });
    expect(close.status).toBe(204);
    const client = new TailhookClient({ server: running.url, token: running.adminToken });
    const items: StreamItem[] = [];
    for await (const item of client.tailStream("recovery/closed")) items.push(item);
    expect(items).toEqual([1, 2, 3].map((a) => ({ kind: "message", offset: offset(a), message: { a } })));
    // A text stream cannot be split into messages: refused, not retried.
    expect(
      (await running.admin("/v1/stream/recovery/text", { method: "PUT", headers: { "content-type": "text/plain" }, body: "abc" })).status,
    ).toBe(201);
    await expect(client.tailStream("recovery/text").next()).rejects.toBeInstanceOf(TailhookProtocolError);
    // A stream without key frames has no snapshot: 400, thrown.
    await expect(client.tailStream("recovery/closed", { from: "snapshot" }).next()).rejects.toMatchObject({ status: 400 });
  });
});

/** An inbox whose events name their entity in /id, and a sender that remembers each entity's latest event. */
async function keyedInbox(running: TestServer, settings: Record<string, unknown> = {}) {
  const response = await running.admin("/api/inboxes", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ settings: { keyFrame: { key: ["/id"] }, ...settings } }),
  });
  expect(response.status).toBe(201);
  const inbox = (await response.json()) as { id: string; token: string; ingestUrl: string };
  const latest = new Map<string, { seq: number; body: string }>();
  const send = async (id: string, version: number) => {
    const body = JSON.stringify({ id, version });
    const reply = await fetch(inbox.ingestUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(reply.status).toBe(200);
    const { seq } = (await reply.json()) as { seq: number };
    if ((latest.get(id)?.seq ?? 0) < seq) latest.set(id, { seq, body });
    return seq;
  };
  const client = new TailhookClient({ server: running.url, token: inbox.token });
  return { inbox, latest, send, client };
}

const bodyOf = (item: TailItem) => (item.kind === "event" || item.kind === "snapshot" ? decodeEnvelopeBody(item.event).toString() : "");
const entityOf = (item: TailItem) => (JSON.parse(bodyOf(item)) as { id: string }).id;

describe("tail() from an inbox's key frame", () => {
  it("reads the latest event per entity in pages while events keep arriving, then the events after X, ending at the sender's state", async () => {
    const running = await server();
    const { inbox, latest, send } = await keyedInbox(running);
    for (let start = 0; start < MANY; start += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, i) => send(`e${start + i}`, 1)));
    }
    let pagesRead = 0;
    const client = clientWithHook(running, inbox.token, async () => {
      pagesRead++;
      for (let i = 0; i < 5; i++) await send(`e${(pagesRead * 101 + i * 7) % (MANY + 20)}`, 100 + pagesRead);
    });
    const seen = new Map<string, { seq: number; body: string }>();
    const items: TailItem[] = [];
    const controller = new AbortController();
    const reading = (async () => {
      for await (const item of client.tail(inbox.id, { from: "snapshot", signal: controller.signal })) {
        items.push(item);
        if (item.kind === "reset") seen.clear();
        if (item.kind === "snapshot" || item.kind === "event") seen.set(entityOf(item), { seq: item.event.seq, body: bodyOf(item) });
      }
    })();
    let lastSeq = 0;
    for (let round = 0; round < 10; round++) lastSeq = await send(`e${round * 3}`, 200 + round);
    await waitUntil(() => items.some((item) => item.kind === "event" && item.event.seq === lastSeq), "the reader at the last event");
    controller.abort();
    await reading;

    expect(pagesRead).toBeGreaterThanOrEqual(2);
    const framed = items.map((item) => (item.kind === "snapshot" ? { kind: item.kind } : item));
    expect(expectFramed(framed, "start")).toBeGreaterThan(1000);
    const x = seqOf((items[0] as { offset: string }).offset);
    expect(items.filter((item) => item.kind === "snapshot").every((item) => item.event.seq <= x)).toBe(true);
    expect(seen).toEqual(latest);
  });
});

describe("tail() after a 410 caused by retention", () => {
  /**
   * seq 1 is z (never sent again), 2 is a; once the reader has read both, twelve more
   * arrive and retention keeps the last six, 9..14 (b3 c3 a4 b4 c4 a5), which hold the
   * latest event of a, b and c.
   */
  async function fellBehind(onGoneOptions: Parameters<TailhookClient["tail"]>[1]) {
    const running = await server({ TAILHOOK_PRUNE_INTERVAL_MS: "50" });
    const { inbox, latest, send, client } = await keyedInbox(running, { retention: { maxEvents: 6 } });
    await send("z", 1);
    await send("a", 1);
    const controller = new AbortController();
    const items = client.tail(inbox.id, { ...onGoneOptions, signal: controller.signal }) as AsyncGenerator<TailItem>;
    const first = [(await items.next()).value, (await items.next()).value] as TailItem[];
    expect(first.map((item) => item.kind === "event" && item.event.seq)).toEqual([1, 2]);
    // While the reader is busy with #2: b1 c1 a2 b2 c2 a3 b3 c3 a4 b4 c4 a5 (seqs 3..14).
    for (let version = 1; version <= 4; version++) for (const id of ["b", "c", "a"]) await send(id, version + (id === "a" ? 1 : 0));
    await waitUntil(async () => {
      const page = await fetch(`${running.url}/v1/stream/inbox/${inbox.id}?offset=-1`, {
        headers: { authorization: `Bearer ${inbox.token}` },
      });
      return ((await page.json()) as Array<{ seq: number }>)[0]?.seq === 9;
    }, "retention to keep 9..14");
    return { running, inbox, latest, send, items, controller };
  }

  it('onGone "snapshot": a reset, the latest retained event per entity as of X, snapshot-end, then the events after X', async () => {
    const losses: LossNotice[] = [];
    const { inbox, latest, send, items, controller } = await fellBehind({ onGone: "snapshot", onLoss: (notice) => losses.push(notice) });
    try {
      const recovered: TailItem[] = [];
      for (let i = 0; i < 5; i++) recovered.push((await items.next()).value as TailItem);
      // The inbox has key frames: the 410 names where its snapshot is.
      const snapshotPath = `/v1/stream/inbox/${inbox.id}?offset=snapshot`;
      expect(losses).toEqual([{ requestedOffset: offset(2), earliestOffset: offset(8), snapshot: snapshotPath }]);
      expect(recovered[0]).toEqual({ kind: "reset", offset: offset(14), cause: "gone" });
      // z's only event was removed by retention: without compaction it has no value to show.
      const snapshot = recovered.slice(1, 4);
      expect(snapshot.map((item) => item.kind === "snapshot" && [item.event.seq, bodyOf(item)])).toEqual(
        ["a", "b", "c"].map((id) => [latest.get(id)!.seq, latest.get(id)!.body]),
      );
      expect(recovered[4]).toEqual({ kind: "snapshot-end", offset: offset(14) });
      const seq = await send("d", 1);
      const next = (await items.next()).value as TailItem;
      expect(next).toMatchObject({ kind: "event", offset: offset(15), event: { seq } });
      expect(bodyOf(next)).toBe(latest.get("d")!.body);
    } finally {
      controller.abort();
      await items.return(undefined);
    }
  });

  it('onGone "earliest": goes on from the earliest retained event, with no key frame', async () => {
    const { items, controller } = await fellBehind({ onGone: "earliest" });
    try {
      const next: TailItem[] = [];
      for (let i = 0; i < 6; i++) next.push((await items.next()).value as TailItem);
      expect(next.map((item) => item.kind === "event" && item.event.seq)).toEqual([9, 10, 11, 12, 13, 14]);
    } finally {
      controller.abort();
      await items.return(undefined);
    }
  });

  it('onGone "throw": throws TailhookGoneError naming the earliest offset, even with onLoss', async () => {
    const losses: LossNotice[] = [];
    const { items } = await fellBehind({ onGone: "throw", onLoss: (notice) => losses.push(notice) });
    const thrown = await items.next().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(thrown).toBeInstanceOf(TailhookGoneError);
    expect(thrown).toMatchObject({ status: 410, requestedOffset: offset(2), earliestOffset: offset(8) });
    expect(losses).toEqual([]);
  });
});
