/*
 * State streams and snapshot reads over HTTP, on both stores: what is refused (each
 * rule, with nothing stored), and that a snapshot as of X, read in pages while appends
 * go on, is the state @durable-streams/state's MaterializedState computes from the log
 * up to X — and that the snapshot then the deltas after X give the whole log's state.
 * Random operation sequences are test/key-frame-oracle.test.ts's (property-based).
 */
import { stream } from "@durable-streams/client";
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { SseReader } from "./helpers/sse-reader.js";

type Message = {
  type?: string;
  key?: string;
  value?: unknown;
  old_value?: unknown;
  headers: { operation?: string; control?: string; offset?: string; txid?: string; timestamp?: string };
};

const JSON_TYPE = { "content-type": "application/json" };
const STATE = { ...JSON_TYPE, "stream-state": "v1" };

/** MaterializedState fed these messages in order; a reset clears it, as StreamDB does. */
function materialize(messages: Message[]): Map<string, unknown> {
  const state = new MaterializedState();
  for (const message of messages) {
    if (message.headers.control === "reset") state.clear();
    else if (message.headers.operation !== undefined) state.apply(message as ChangeEvent);
  }
  const flat = new Map<string, unknown>();
  for (const type of state.types) for (const [key, value] of state.getType(type)) flat.set(JSON.stringify([type, key]), value);
  return flat;
}

/** A small deterministic PRNG, so a failing sequence can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

function randomChanges(next: () => number, count: number, keys: number): Message[] {
  const operations = ["insert", "update", "upsert", "delete", "insert"];
  return Array.from({ length: count }, (_, index) => {
    const operation = operations[Math.floor(next() * operations.length)]!;
    const type = next() < 0.5 ? "user" : "ü-type";
    const key = `k${Math.floor(next() * keys)}`;
    if (operation === "delete") return { type, key, headers: { operation } };
    return { type, key, value: { n: index, big: "x".repeat(Math.floor(next() * 40)) }, headers: { operation } };
  });
}

describe("state streams", () => {
  let server: TestServer;
  const put = (name: string, headers: Record<string, string> = STATE, body?: string) =>
    server.admin(`/v1/stream/${name}`, { method: "PUT", headers, body });
  const post = (name: string, body: unknown) =>
    server.admin(`/v1/stream/${name}`, {
      method: "POST",
      headers: JSON_TYPE,
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const tail = async (name: string) => (await server.admin(`/v1/stream/${name}`, { method: "HEAD" })).headers.get("stream-next-offset");

  async function readLog(name: string, from = "-1", until?: string): Promise<{ messages: Message[]; next: string }> {
    const messages: Message[] = [];
    let offset = from;
    for (;;) {
      const response = await server.admin(`/v1/stream/${name}?offset=${offset}`);
      expect(response.status).toBe(200);
      messages.push(...((await response.json()) as Message[]));
      offset = response.headers.get("stream-next-offset")!;
      if (response.headers.get("stream-up-to-date") === "true" || (until !== undefined && offset >= until))
        return { messages, next: offset };
    }
  }

  /** A whole snapshot read, page by page, with an optional step between pages. */
  async function readSnapshot(name: string, between: () => Promise<void> = async () => undefined) {
    const pages: Message[][] = [];
    let offset = "snapshot";
    for (;;) {
      const response = await server.admin(`/v1/stream/${name}?offset=${offset}`);
      expect(response.status, await response.clone().text()).toBe(200);
      expect(response.headers.get("stream-state")).toBe("v1");
      pages.push((await response.json()) as Message[]);
      offset = response.headers.get("stream-next-offset")!;
      if (!offset.startsWith("snapshot:")) break;
      expect(response.headers.get("stream-up-to-date")).toBeNull();
      await between();
    }
    const all = pages.flat();
    const start = all[0]!.headers;
    expect(start.control).toBe("snapshot-start");
    expect(all.at(-1)!.headers).toEqual({ control: "snapshot-end", offset: start.offset });
    expect(offset).toBe(start.offset);
    const inserts = all.slice(1, -1);
    expect(inserts.every((message) => message.headers.operation === "insert" && Object.keys(message.headers).length === 1)).toBe(true);
    const order = inserts.map((message) => Buffer.from(JSON.stringify([message.type, message.key])));
    expect([...order].sort(Buffer.compare)).toEqual(order);
    return { pages, inserts, asOf: start.offset!, all };
  }

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("Stream-State: v1 makes a state stream, echoed on PUT, HEAD, GET and appends; the flag is part of its configuration", async () => {
    const created = await put("flag/a");
    expect(created.status).toBe(201);
    expect(created.headers.get("stream-state")).toBe("v1");
    expect((await server.admin("/v1/stream/flag/a", { method: "HEAD" })).headers.get("stream-state")).toBe("v1");
    expect((await server.admin("/v1/stream/flag/a?offset=-1")).headers.get("stream-state")).toBe("v1");
    const appended = await post("flag/a", { type: "t", key: "k", value: 1, headers: { operation: "insert" } });
    expect(appended.status).toBe(204);
    expect(appended.headers.get("stream-state")).toBe("v1");
    expect((await put("flag/a")).status).toBe(200);
    expect((await put("flag/a", JSON_TYPE)).status).toBe(409);
    expect((await put("flag/plain", JSON_TYPE)).status).toBe(201);
    expect((await server.admin("/v1/stream/flag/plain", { method: "HEAD" })).headers.get("stream-state")).toBeNull();
    expect((await put("flag/plain")).status).toBe(409);
    expect((await put("flag/text", { "content-type": "text/plain", "stream-state": "v1" })).status).toBe(400);
    expect((await put("flag/v2", { ...JSON_TYPE, "stream-state": "v2" })).status).toBe(400);
    expect((await put("flag/fork", { ...STATE, "stream-forked-from": "flag/a" })).status).toBe(409);
    expect((await put("flag/fork2", { ...JSON_TYPE, "stream-forked-from": "flag/a" })).status).toBe(409);
    // A plain JSON stream takes anything, and has no snapshot.
    expect((await post("flag/plain", { anything: true })).status).toBe(204);
    expect((await server.admin("/v1/stream/flag/plain?offset=snapshot")).status).toBe(400);
  });

  const valid = { type: "user", key: "1", value: { name: "a" }, headers: { operation: "insert" } };
  const refusals: Array<[string, unknown]> = [
    ["a message that is not a JSON object", 42],
    ["a message that is an array", [[valid]]],
    ["a change without type", { key: "1", value: 1, headers: { operation: "insert" } }],
    ["a change without key", { type: "user", value: 1, headers: { operation: "insert" } }],
    ["a message without headers", { type: "user", key: "1", value: 1 }],
    ["an empty type", { type: "", key: "1", value: 1, headers: { operation: "insert" } }],
    ["an empty key", { type: "user", key: "", value: 1, headers: { operation: "insert" } }],
    ["a key that is not a string", { type: "user", key: 1, value: 1, headers: { operation: "insert" } }],
    ["an unknown operation", { type: "user", key: "1", value: 1, headers: { operation: "replace" } }],
    ["an insert without value", { type: "user", key: "1", headers: { operation: "insert" } }],
    ["an update without value", { type: "user", key: "1", headers: { operation: "update" } }],
    ["an upsert without value", { type: "user", key: "1", headers: { operation: "upsert" } }],
    ["an unknown member", { ...valid, extra: 1 }],
    ["an unknown change header", { ...valid, headers: { operation: "insert", from: "x" } }],
    ["an empty txid", { ...valid, headers: { operation: "insert", txid: "" } }],
    ["a timestamp that is not RFC 3339", { ...valid, headers: { operation: "insert", timestamp: "yesterday" } }],
    ["a control message with an unknown control", { headers: { control: "snapshot-middle" } }],
    ["a control message with an empty offset", { headers: { control: "reset", offset: "" } }],
    ["a control message with an unknown member", { headers: { control: "reset" }, type: "user" }],
    ["change and control at once", { ...valid, headers: { operation: "insert", control: "reset" } }],
    ["a type holding U+0000", { ...valid, type: "a\u0000b" }],
    ["a key that is too long", { ...valid, key: "k".repeat(1025) }],
  ];

  it.each(refusals)("refuses %s with 400, storing nothing of the append", async (_rule, bad) => {
    expect([200, 201]).toContain((await put("refusals/a")).status);
    const before = await tail("refusals/a");
    const response = await post("refusals/a", [valid, bad]);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string; messageIndex: number } };
    expect(body.error).toMatchObject({ code: "bad_request", messageIndex: 1 });
    expect(body.error.message).toMatch(/^message 2 is not a valid State Protocol message: .+; nothing was stored$/);
    expect(await tail("refusals/a")).toBe(before);
  });

  it("refuses a key with a lone surrogate, and a create whose initial messages are refused creates nothing", async () => {
    expect((await put("refusals/b")).status).toBe(201);
    expect((await post("refusals/b", `[{"type":"user","key":"\\ud800","value":1,"headers":{"operation":"insert"}}]`)).status).toBe(400);
    expect(await tail("refusals/b")).toBe("0000000000000000_0000000000000000");
    expect((await put("refusals/c", STATE, JSON.stringify([valid, { type: "user" }]))).status).toBe(400);
    expect((await server.admin("/v1/stream/refusals/c", { method: "HEAD" })).status).toBe(404);
  });

  it("a refused append advances no producer and closes nothing", async () => {
    expect((await put("refusals/producer")).status).toBe(201);
    const producer = { ...JSON_TYPE, "producer-id": "p", "producer-epoch": "0", "producer-seq": "0" };
    const send = (body: unknown, headers: Record<string, string>) =>
      server.admin("/v1/stream/refusals/producer", { method: "POST", headers, body: JSON.stringify(body) });
    expect((await send([valid, { nope: 1 }], { ...producer, "stream-closed": "true" })).status).toBe(400);
    const head = await server.admin("/v1/stream/refusals/producer", { method: "HEAD" });
    expect(head.headers.get("stream-closed")).toBeNull();
    expect(head.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000000");
    // The same producer seq is still the next one: nothing of the refused append counted.
    expect((await send([valid], producer)).status).toBe(200);
    expect(await tail("refusals/producer")).toBe("0000000000000000_0000000000000001");
  });

  it("accepts every operation, timestamps, txids and control messages; a snapshot is the MaterializedState of the log", async () => {
    const messages: Message[] = [
      { type: "user", key: "1", value: { name: "Alice" }, headers: { operation: "insert", txid: "t1", timestamp: "2025-01-15T10:30:00Z" } },
      { type: "user", key: "2", value: { name: "Bob" }, headers: { operation: "insert" } },
      { type: "user", key: "1", value: { name: "Alice Smith" }, old_value: { name: "Alice" }, headers: { operation: "update" } },
      { type: "user", key: "3", value: null, headers: { operation: "upsert" } },
      { type: "user", key: "2", value: null, headers: { operation: "delete" } },
      { headers: { control: "snapshot-start", offset: "whatever" } },
      { type: "config", key: "theme", value: "dark", headers: { operation: "insert" } },
      { type: "user", key: "4", headers: { operation: "delete" } },
      { type: "user", key: "2", value: { name: "Bob again" }, headers: { operation: "insert" } },
    ];
    expect((await put("oracle/ops", STATE, JSON.stringify(messages.slice(0, 3)))).status).toBe(201);
    expect((await post("oracle/ops", messages.slice(3))).status).toBe(204);
    const { inserts, all } = await readSnapshot("oracle/ops");
    expect(all).toHaveLength(inserts.length + 2);
    expect(materialize(inserts)).toEqual(materialize(messages));
    expect(inserts.map((message) => [message.type, message.key])).toEqual([
      ["config", "theme"],
      ["user", "1"],
      ["user", "2"],
      ["user", "3"],
    ]);
  });

  it("a reset clears the state before it; values come byte for byte", async () => {
    const big = '{"type":"n","key":"big","value":{"z":12345678901234567890123,"a":"\\u00e9"},"headers":{"operation":"insert"}}';
    expect((await put("oracle/reset", STATE, JSON.stringify([valid, { ...valid, key: "2" }]))).status).toBe(201);
    expect((await post("oracle/reset", { headers: { control: "reset" } })).status).toBe(204);
    expect((await post("oracle/reset", `[${big}, ${JSON.stringify({ ...valid, key: "3" })}]`)).status).toBe(204);
    const response = await server.admin("/v1/stream/oracle/reset?offset=snapshot");
    const text = await response.text();
    expect(text).toContain('"value":{"z":12345678901234567890123,"a":"\\u00e9"}');
    const { inserts } = await readSnapshot("oracle/reset");
    expect(inserts.map((message) => message.key)).toEqual(["big", "3"]);
    expect(materialize(inserts)).toEqual(materialize((await readLog("oracle/reset")).messages));
  });

  it("a paginated snapshot with appends running meanwhile is the log's state as of X; then the deltas after X give the whole log's", async () => {
    const name = "oracle/pages";
    expect((await put(name)).status).toBe(201);
    // 2,500 keys with 1 KB values: pages are cut by both the key and the byte limits.
    for (let batch = 0; batch < 5; batch++) {
      const changes = Array.from({ length: 500 }, (_, index) => ({
        type: "row",
        key: `key-${String(batch * 500 + index).padStart(5, "0")}`,
        value: { v: 0, pad: "p".repeat(1000) },
        headers: { operation: "insert" },
      }));
      expect((await post(name, changes)).status).toBe(204);
    }
    const next = random(42);
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        const changes = Array.from({ length: 20 }, (): Message => {
          const key = `key-${String(Math.floor(next() * 2600)).padStart(5, "0")}`;
          const roll = next();
          if (roll < 0.3) return { type: "row", key, headers: { operation: "delete" } };
          return { type: "row", key, value: { v: writes, pad: "q" }, headers: { operation: roll < 0.6 ? "update" : "upsert" } };
        });
        expect((await post(name, changes)).status).toBe(204);
        writes++;
      }
    })();
    const seen = writes;
    const snapshot = await readSnapshot(
      name,
      () =>
        new Promise<void>((resolve) => {
          // Let the writer commit at least one more append between pages.
          const target = writes + 1;
          const check = () => (writes >= target || !writing ? resolve() : setImmediate(check));
          check();
        }),
    );
    writing = false;
    await writer;
    expect(snapshot.pages.length).toBeGreaterThanOrEqual(3);
    expect(writes).toBeGreaterThan(seen);
    const log = await readLog(name, "-1");
    const asOfSeq = Number(snapshot.asOf.split("_")[1]);
    expect(materialize(snapshot.inserts)).toEqual(materialize(log.messages.slice(0, asOfSeq)));
    const deltas = await readLog(name, snapshot.asOf);
    expect(deltas.messages.length).toBe(log.messages.length - asOfSeq);
    expect(materialize([...snapshot.inserts, ...deltas.messages])).toEqual(materialize(log.messages));
  });

  it("offset=snapshot&live=sse sends the snapshot, then the live deltas after X, on one connection", async () => {
    const name = "oracle/sse";
    const messages = randomChanges(random(11), 120, 25);
    expect((await put(name, STATE, JSON.stringify(messages))).status).toBe(201);
    const sse = await SseReader.open(`${server.url}/v1/stream/${name}?offset=snapshot&live=sse&token=${server.adminToken}`);
    try {
      expect(sse.response.status).toBe(200);
      const received = () => sse.events.filter((event) => event.event === "data").flatMap((event) => JSON.parse(event.data) as Message[]);
      await sse.waitFor(() => received().some((message) => message.headers.control === "snapshot-end"));
      const controls = sse.events
        .filter((event) => event.event === "control")
        .map((event) => JSON.parse(event.data) as { streamNextOffset: string });
      expect(controls[0]!.streamNextOffset).toBe("0000000000000000_0000000000000120");
      const delta: Message = { type: "user", key: "live", value: 1, headers: { operation: "insert" } };
      expect((await post(name, delta)).status).toBe(204);
      await sse.waitFor(() => received().some((message) => message.key === "live"));
      const all = received();
      expect(all[0]!.headers).toEqual({ control: "snapshot-start", offset: "0000000000000000_0000000000000120" });
      expect(materialize(all)).toEqual(materialize([...messages, delta]));
    } finally {
      sse.close();
    }
  });

  it("@durable-streams/client reads a paged snapshot from offset=snapshot as ordinary long-poll pages, up to date at X", async () => {
    const name = "oracle/client";
    const rows = Array.from({ length: 1500 }, (_, index): Message => ({
      type: "row",
      key: `r${index}`,
      value: index,
      headers: { operation: "upsert" },
    }));
    expect((await put(name, STATE, JSON.stringify(rows))).status).toBe(201);
    const response = await stream<Message>({
      url: `${server.url}/v1/stream/${name}`,
      headers: { authorization: `Bearer ${server.adminToken}` },
      offset: "snapshot",
      live: "long-poll",
    });
    const items = await response.json();
    expect(items).toHaveLength(1502);
    expect(items.filter((item) => item.headers.control !== undefined).map((item) => item.headers.control)).toEqual([
      "snapshot-start",
      "snapshot-end",
    ]);
    expect(materialize(items)).toEqual(materialize(rows));
    expect(response.offset).toBe("0000000000000000_0000000000001500");
  });

  it("a snapshot of an empty state stream is its two control messages, up to date at the tail", async () => {
    expect((await put("oracle/empty")).status).toBe(201);
    const response = await server.admin("/v1/stream/oracle/empty?offset=snapshot&live=long-poll");
    expect(response.status).toBe(200);
    expect(response.headers.get("stream-up-to-date")).toBe("true");
    expect(response.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000000");
    expect(await response.json()).toEqual([
      { headers: { control: "snapshot-start", offset: "0000000000000000_0000000000000000" } },
      { headers: { control: "snapshot-end", offset: "0000000000000000_0000000000000000" } },
    ]);
  });

  it("refuses cursors it did not hand out, or for another stream", async () => {
    expect((await put("cursor/a")).status).toBe(201);
    expect((await server.admin("/v1/stream/cursor/a?offset=snapshot:bm9wZQ")).status).toBe(400);
    const other = Buffer.from(JSON.stringify([1, 999999, 0, "t", "k"])).toString("base64url");
    expect((await server.admin(`/v1/stream/cursor/a?offset=snapshot:${other}`)).status).toBe(400);
    expect((await server.admin(`/v1/stream/cursor/a?offset=snapshot:${other}&live=sse`)).status).toBe(400);
  });
});

describe("state streams across a restart", () => {
  it("keep their flag, their validation and their key index", async () => {
    const first = await startTestServer();
    const name = "restart/state";
    const messages = randomChanges(random(7), 200, 30);
    expect(
      (await first.admin(`/v1/stream/${name}`, { method: "PUT", headers: STATE, body: JSON.stringify(messages.slice(0, 100)) })).status,
    ).toBe(201);
    await first.close();
    const second = await startTestServer({}, { dataDir: first.dataDir });
    try {
      expect((await second.admin(`/v1/stream/${name}`, { method: "HEAD" })).headers.get("stream-state")).toBe("v1");
      const post = (body: unknown) =>
        second.admin(`/v1/stream/${name}`, { method: "POST", headers: JSON_TYPE, body: JSON.stringify(body) });
      expect((await post({ nope: 1 })).status).toBe(400);
      expect((await post(messages.slice(100))).status).toBe(204);
      const response = await second.admin(`/v1/stream/${name}?offset=snapshot`);
      expect(response.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000200");
      const snapshot = (await response.json()) as Message[];
      expect(materialize(snapshot.slice(1, -1))).toEqual(materialize(messages));
    } finally {
      await second.stop();
    }
  });
});
