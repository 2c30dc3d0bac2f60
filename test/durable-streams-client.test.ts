/*
 * The real @durable-streams/client against a real tailhook server (port 0, SQLite,
 * tokens required): it creates, appends to (plainly and as an idempotent producer),
 * tails and closes a general stream, and tails an inbox while webhooks arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DurableStream, IdempotentProducer, stream, type JsonBatch } from "@durable-streams/client";
import type { EventEnvelope } from "../dist/core/types.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

let server: TestServer;
let auth: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer();
  auth = { Authorization: `Bearer ${server.adminToken}` };
});

afterAll(async () => {
  await server.stop();
});

/** Collects JSON items from a live subscription until `count` arrived. */
function collect<T>(count: number, subscribe: (onBatch: (batch: JsonBatch<T>) => void) => () => void) {
  const items: T[] = [];
  const offsets: string[] = [];
  let stop = () => {};
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${items.length} of ${count} items arrived`)), 15_000);
    stop = subscribe((batch) => {
      items.push(...batch.items);
      offsets.push(batch.offset);
      if (items.length >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { items, offsets, done: done.finally(() => stop()) };
}

describe("@durable-streams/client on a general stream", () => {
  it("creates, appends, tails live, resumes from an offset and sees the close", async () => {
    const url = `${server.url}/v1/stream/client/orders-${Date.now()}`;
    const handle = await DurableStream.create({ url, headers: auth, contentType: "application/json" });

    // A live tail from the start, opened before anything is written.
    const live = await handle.stream<{ n: number }>({ offset: "-1", live: true });
    const tail = collect<{ n: number }>(30, (onBatch) => live.subscribeJson(async (batch) => onBatch(batch)));

    for (let n = 0; n < 10; n++) await handle.append(JSON.stringify({ n }));
    const producer = new IdempotentProducer(handle, "client-test", { lingerMs: 1 });
    for (let n = 10; n < 30; n++) producer.append(JSON.stringify({ n }));
    await producer.flush();
    await producer.detach();

    await tail.done;
    live.cancel();
    expect(tail.items.map((item) => item.n)).toEqual([...Array(30).keys()]);

    // Catch-up from a saved offset returns exactly what came after it.
    const head = await handle.head();
    expect(head).toMatchObject({ exists: true, streamClosed: false });
    const all = await (await handle.stream<{ n: number }>({ offset: "-1", live: false })).json();
    expect(all).toHaveLength(30);
    const firstBatchEnd = tail.offsets[0]!;
    const rest = await (await handle.stream<{ n: number }>({ offset: firstBatchEnd, live: false })).json();
    expect(rest.map((item) => item.n)).toEqual(all.slice(all.length - rest.length).map((item) => item.n));

    await handle.close();
    expect(await handle.head()).toMatchObject({ exists: true, streamClosed: true });
  });

  it("is refused without the token (the server is not --open)", async () => {
    const url = `${server.url}/v1/stream/client/secret-${Date.now()}`;
    await expect(DurableStream.create({ url, contentType: "application/json" })).rejects.toThrow();
    expect((await fetch(url, { method: "PUT", headers: auth })).status).toBe(201);
    const refused = await fetch(url);
    expect(refused.status).toBe(401);
  });
});

describe("@durable-streams/client on an inbox", () => {
  it("tails an inbox's events while webhooks arrive", async () => {
    const inbox = await server.createInbox();
    const webhooks = 25;
    const res = await stream<EventEnvelope>({
      url: inbox.streamUrl,
      headers: { Authorization: `Bearer ${inbox.token}` },
      offset: "-1",
      live: true,
    });
    const tail = collect<EventEnvelope>(webhooks, (onBatch) => res.subscribeJson(async (batch) => onBatch(batch)));
    for (let i = 0; i < webhooks; i++) {
      const sent = await fetch(`${inbox.ingestUrl}/hooks/${i}`, { method: "POST", body: JSON.stringify({ delivery: i }) });
      expect(sent.status).toBe(200);
    }
    await tail.done;
    res.cancel();
    expect(tail.items.map((event) => event.seq)).toEqual([...Array(webhooks).keys()].map((i) => i + 1));
    expect(tail.items.map((event) => JSON.parse(event.body).delivery)).toEqual([...Array(webhooks).keys()]);
    expect(tail.items[3]!.path).toBe("/hooks/3");
  });
});
