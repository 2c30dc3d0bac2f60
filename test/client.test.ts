/*
 * The client library as users import it (`TailhookClient` from the package entry):
 * tail() follows an inbox across server restarts (a real `tailhook serve` child,
 * SIGTERM and SIGKILL, restarted on the same port and data folder) with no gap and no
 * repeat; with a consumer it starts after the last ack; and it reports events lost to
 * retention through onLoss (or throws TailhookGoneError without it).
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  decodeEnvelopeBody,
  TailhookClient,
  TailhookGoneError,
  type EventEnvelope,
  type LossNotice,
  type TailedEvent,
} from "../dist/index.js";
import { waitUntil } from "./helpers/wait.js";
import { killAllChildren, sleep, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitForReaders } from "./helpers/readers.js";

const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;
const dirs: string[] = [];
const servers: TestServer[] = [];

afterEach(async () => {
  await killAllChildren();
  for (const server of servers.splice(0)) await server.stop();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Sent {
  seq: number;
  id: string;
  method: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

/** Sends one webhook with node:http (exact header list) and returns what the server acknowledged. */
function send(
  baseUrl: string,
  inboxId: string,
  method: string,
  pathAndQuery: string,
  headers: Array<[string, string]>,
  body: Buffer,
): Promise<Sent> {
  const { hostname, port } = new URL(baseUrl);
  // A raw header list gets no Host from node: give it, or the server answers 400.
  const raw = ["Host", `${hostname}:${port}`, ...headers.flat(), "Content-Length", String(body.length)];
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path: `/h/${inboxId}${pathAndQuery}`, headers: raw, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) return reject(new Error(`ingest answered ${res.statusCode}: ${text}`));
        const ack = JSON.parse(text) as { id: string; seq: number };
        const [path, query = ""] = pathAndQuery.split(/\?(.*)/s);
        resolve({ seq: ack.seq, id: ack.id, method, path: path!, query, headers, body });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A varied webhook: binary or text body, a sub-path and query, duplicate and mixed-case headers. */
function sendVaried(baseUrl: string, inboxId: string, n: number): Promise<Sent> {
  const binary = n % 3 === 1;
  const body = binary
    ? Buffer.concat([Buffer.from([0xff, 0x00, n]), randomBytes(64)])
    : Buffer.from(JSON.stringify({ n, text: "héllo ✓" }));
  const headers: Array<[string, string]> = [
    ["Content-Type", binary ? "application/octet-stream" : "application/json"],
    ["X-Dup", `first-${n}`],
    ["x-dup", `second-${n}`],
    ["X-Signature", `sha256=${n}`],
  ];
  return send(baseUrl, inboxId, n % 4 === 0 ? "PUT" : "POST", `/hooks/${n}?n=${n}&tag=a&tag=b`, headers, body);
}

async function createInbox(url: string, adminToken: string, settings?: unknown): Promise<{ id: string; token: string }> {
  const admin = new TailhookClient({ server: url, token: adminToken });
  return admin.createInbox(settings === undefined ? {} : { settings: settings as never });
}

/** Iterates in the background, collecting every event, until stopped. */
function collect(events: AsyncGenerator<TailedEvent>): { seen: TailedEvent[]; error: unknown; done: Promise<void> } {
  const state = { seen: [] as TailedEvent[], error: undefined as unknown, done: Promise.resolve() };
  state.done = (async () => {
    try {
      for await (const item of events) state.seen.push(item);
    } catch (error) {
      state.error = error;
    }
  })();
  return state;
}

function expectEnvelope(item: TailedEvent, sent: Sent, inboxRemote = true): void {
  const event: EventEnvelope = item.event;
  expect(item.offset).toBe(offset(sent.seq));
  expect(event).toMatchObject({
    seq: sent.seq,
    id: sent.id,
    method: sent.method,
    path: sent.path,
    query: sent.query,
    size: sent.body.length,
    contentType: sent.headers[0]![1],
    bodyEncoding: sent.body[0] === 0xff ? "base64" : "utf8",
  });
  expect(event.id).toMatch(/^evt_/);
  expect(new Date(event.receivedAt).toISOString()).toBe(event.receivedAt);
  expect(decodeEnvelopeBody(event).equals(sent.body)).toBe(true);
  // Our headers are there, in order, with case and duplicates kept.
  const ours = event.headers.filter(([name]) => /^(content-type|x-dup|x-signature)$/i.test(name));
  expect(ours).toEqual(sent.headers);
  if (inboxRemote) expect(event.remoteAddr).toMatch(/127\.0\.0\.1/);
}

describe("tail()", () => {
  it("yields every event in order, typed, and resumes across a server SIGTERM and a SIGKILL with no gap and no repeat", async () => {
    const dataDir = tempDir("tailhook-client-restart-");
    dirs.push(dataDir);
    // A short long-poll timeout makes the iterator also go through empty (204) polls.
    const args = ["--long-poll-timeout", "700"];
    let server: ServerProcess = await startServerProcess({ dataDir, args });
    const port = server.port;
    const inbox = await createInbox(server.url, server.adminToken);
    const client = new TailhookClient({ server: `${server.url}/`, token: inbox.token });

    const sent: Sent[] = [];
    for (let n = 1; n <= 3; n++) sent.push(await sendVaried(server.url, inbox.id, n));

    const controller = new AbortController();
    let retries = 0;
    const tail = collect(client.tail(inbox.id, { signal: controller.signal, onRetry: () => retries++ }));
    try {
      await waitUntil(() => tail.seen.length >= 3, "the first 3 events");
      for (let n = 4; n <= 5; n++) sent.push(await sendVaried(server.url, inbox.id, n));
      await waitUntil(() => tail.seen.length >= 5, "5 events");
      await sleep(900); // at least one empty long-poll (700 ms timeout): idle time is the input here

      for (const signal of ["SIGTERM", "SIGKILL"] as const) {
        const exit = await server.kill(signal);
        expect(exit).toEqual(signal === "SIGTERM" ? { code: 0, signal: null } : { code: null, signal: "SIGKILL" });
        const retriesBefore = retries;
        await waitUntil(() => retries > retriesBefore, `the iterator to retry while the server is down after ${signal}`);
        server = await startServerProcess({ dataDir, args, port });
        expect(server.port).toBe(port);
        const before = sent.length;
        for (let n = before + 1; n <= before + 3; n++) sent.push(await sendVaried(server.url, inbox.id, n));
        await waitUntil(() => tail.seen.length >= sent.length, `${sent.length} events after the ${signal} restart`, 20_000);
      }
      // A sentinel after the restarts: a repeat of anything before would be yielded ahead of it.
      sent.push(await sendVaried(server.url, inbox.id, 12));
      await waitUntil(() => tail.seen.some((item) => item.event.seq === 12), "the sentinel event 12");
    } finally {
      controller.abort();
      await tail.done;
    }
    expect(tail.error).toBeUndefined();
    expect(tail.seen.map((item) => item.event.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(sent.map((s) => s.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    tail.seen.forEach((item, index) => expectEnvelope(item, sent[index]!));
    expect(retries).toBeGreaterThan(0); // it did go through the outage
  }, 50_000);

  it("with a consumer starts after its last ack; reading alone commits nothing", async () => {
    const server = await startTestServer({ longPollTimeout: 3000 });
    servers.push(server);
    const inbox = await createInbox(server.url, server.adminToken);
    const client = new TailhookClient({ server: server.url, token: inbox.token });
    const sent: Sent[] = [];
    for (let n = 1; n <= 5; n++) sent.push(await sendVaried(server.url, inbox.id, n));

    // The first reader takes all five but acks only up to the third.
    const first: TailedEvent[] = [];
    for await (const item of client.tail(inbox.id, { consumer: "worker" })) {
      first.push(item);
      if (item.event.seq === 3) {
        const info = await client.ack(inbox.id, "worker", item.offset);
        expect(info).toMatchObject({ name: "worker", committedSeq: 3, committedOffset: offset(3), lag: { events: 2 } });
      }
      if (first.length === 5) break;
    }
    expect(first.map((item) => item.event.seq)).toEqual([1, 2, 3, 4, 5]);
    first.forEach((item, index) => expectEnvelope(item, sent[index]!));
    expect(await client.getConsumer(inbox.id, "worker")).toMatchObject({ committedSeq: 3, lag: { events: 2, lostEvents: 0 } });

    // A second reader with the same consumer begins right after the acked event, then follows live.
    const controller = new AbortController();
    const second = collect(client.tail(inbox.id, { consumer: "worker", signal: controller.signal }));
    try {
      await waitUntil(() => second.seen.length >= 2, "events 4 and 5 again");
      // Caught up and waiting in a long-poll: event 6 reaches it live.
      await waitForReaders(server, "long-poll");
      sent.push(await sendVaried(server.url, inbox.id, 6));
      await waitUntil(() => second.seen.length >= 3, "event 6");
      // A sentinel: a repeat of 4 to 6 would be yielded ahead of it.
      sent.push(await sendVaried(server.url, inbox.id, 7));
      await waitUntil(() => second.seen.some((item) => item.event.seq === 7), "the sentinel event 7");
    } finally {
      controller.abort();
      await second.done;
    }
    expect(second.error).toBeUndefined();
    expect(second.seen.map((item) => item.event.seq)).toEqual([4, 5, 6, 7]);
    expectEnvelope(second.seen[2]!, sent[5]!);

    // Acks never move backwards; a fresh consumer name starts at the beginning.
    expect((await client.ack(inbox.id, "worker", offset(7))).committedSeq).toBe(7);
    expect((await client.ack(inbox.id, "worker", offset(2))).committedSeq).toBe(7);
    const fresh: number[] = [];
    for await (const item of client.tail(inbox.id, { consumer: "another" })) {
      fresh.push(item.event.seq);
      if (fresh.length === 7) break;
    }
    expect(fresh).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await client.listConsumers(inbox.id)).map((c) => [c.name, c.committedSeq])).toEqual([
      ["another", 0],
      ["worker", 7],
    ]);

    // A consumer created "now" reads only what comes after.
    expect((await client.createConsumer(inbox.id, "late", "now")).committedSeq).toBe(7);
    const lateController = new AbortController();
    const late = collect(client.tail(inbox.id, { consumer: "late", signal: lateController.signal }));
    try {
      // Its long-poll is waiting (the start, the committed offset, is fixed by then).
      await waitForReaders(server, "long-poll");
      sent.push(await sendVaried(server.url, inbox.id, 8));
      await waitUntil(() => late.seen.length >= 1, "event 8");
      // A sentinel: anything before 8 (or a repeat of it) would be yielded ahead of it.
      sent.push(await sendVaried(server.url, inbox.id, 9));
      await waitUntil(() => late.seen.some((item) => item.event.seq === 9), "the sentinel event 9");
    } finally {
      lateController.abort();
      await late.done;
    }
    expect(late.seen.map((item) => item.event.seq)).toEqual([8, 9]);
  });
});

describe("tail() and retention", () => {
  async function retainingServer() {
    const server = await startTestServer({ longPollTimeout: 3000 }, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
    servers.push(server);
    const inbox = await createInbox(server.url, server.adminToken, { retention: { maxEvents: 3 } });
    const client = new TailhookClient({ server: server.url, token: inbox.token });
    const waitForPrune = (firstKept: number) =>
      waitUntil(async () => {
        const response = await fetch(`${server.url}/v1/stream/inbox/${inbox.id}?offset=-1`, {
          headers: { authorization: `Bearer ${inbox.token}` },
        });
        const events = (await response.json()) as EventEnvelope[];
        return events[0]?.seq === firstKept;
      }, `a prune up to #${firstKept}`);
    return { server, inbox, client, waitForPrune };
  }

  it("calls onLoss when retention passed the iterator's position, then goes on from the earliest retained event", async () => {
    const { server, inbox, client, waitForPrune } = await retainingServer();
    const sent: Sent[] = [];
    for (let n = 1; n <= 2; n++) sent.push(await sendVaried(server.url, inbox.id, n));

    const losses: LossNotice[] = [];
    const controller = new AbortController();
    const events = client.tail(inbox.id, { signal: controller.signal, onLoss: (notice) => losses.push(notice) });
    try {
      expect((await events.next()).value?.event.seq).toBe(1);
      expect((await events.next()).value?.event.seq).toBe(2);
      // While the reader is busy with #2, eight more arrive and retention keeps only 8..10.
      for (let n = 3; n <= 10; n++) sent.push(await sendVaried(server.url, inbox.id, n));
      await waitForPrune(8);
      expect(losses).toEqual([]);
      const next = [(await events.next()).value!, (await events.next()).value!, (await events.next()).value!];
      expect(next.map((item) => item.event.seq)).toEqual([8, 9, 10]);
      next.forEach((item, index) => expectEnvelope(item, sent[7 + index]!));
      expect(losses).toEqual([{ requestedOffset: offset(2), earliestOffset: offset(7) }]);
    } finally {
      controller.abort();
      await events.return(undefined);
    }
  });

  it("without onLoss, the iterator throws TailhookGoneError naming the earliest retained offset", async () => {
    const { server, inbox, client, waitForPrune } = await retainingServer();
    for (let n = 1; n <= 10; n++) await sendVaried(server.url, inbox.id, n);
    await waitForPrune(8);
    const thrown = await (async () => {
      try {
        for await (const _ of client.tail(inbox.id, { from: offset(2) })) throw new Error("yielded an event after a loss");
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(TailhookGoneError);
    expect(thrown).toMatchObject({ status: 410, requestedOffset: offset(2), earliestOffset: offset(7) });

    // From "start" there is no loss to report: the start is the earliest retained event.
    const fromStart: number[] = [];
    for await (const item of client.tail(inbox.id, { onLoss: () => fromStart.push(-1) })) {
      fromStart.push(item.event.seq);
      if (fromStart.length === 3) break;
    }
    expect(fromStart).toEqual([8, 9, 10]);
  });

  it("a consumer behind retention gets onLoss and the retained events, and stays where it was until acked", async () => {
    const { server, inbox, client, waitForPrune } = await retainingServer();
    expect((await client.createConsumer(inbox.id, "behind")).committedSeq).toBe(0);
    for (let n = 1; n <= 10; n++) await sendVaried(server.url, inbox.id, n);
    await waitForPrune(8);
    expect(await client.getConsumer(inbox.id, "behind")).toMatchObject({ committedSeq: 0, lag: { events: 3, lostEvents: 7 } });

    const losses: LossNotice[] = [];
    const seen: number[] = [];
    for await (const item of client.tail(inbox.id, { consumer: "behind", onLoss: (notice) => losses.push(notice) })) {
      seen.push(item.event.seq);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([8, 9, 10]);
    expect(losses).toHaveLength(1);
    expect(losses[0]!.earliestOffset).toBe(offset(7));
    expect(await client.getConsumer(inbox.id, "behind")).toMatchObject({ committedSeq: 0, lag: { lostEvents: 7 } });
    expect((await client.ack(inbox.id, "behind", offset(10))).lag).toMatchObject({ events: 0, lostEvents: 0 });
  });
});
