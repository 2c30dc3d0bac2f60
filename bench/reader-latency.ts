/*
 * Ingest→reader latency: an open-loop sender POSTs at a fixed rate (on a schedule,
 * whatever the replies do) over a few keep-alive connections, while one reader in
 * this process (long-poll or SSE) follows the inbox from offset "now". Each body
 * carries its send time (performance.now()); an event's latency is the time the
 * reader got it minus that, on the same clock.
 */
import { Agent, request, type IncomingHttpHeaders, type RequestOptions } from "node:http";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { Inbox } from "./children.js";
import { paddedJson } from "./stats.js";

export type ReaderMode = "long-poll" | "sse";

export interface ReaderLatencyOptions {
  rate: number;
  seconds: number;
  connections: number;
  bodyBytes: number;
}

export interface ReaderLatencyResult {
  sent: number;
  sendFailures: number;
  /** Achieved send rate, requests/s. */
  sendRate: number;
  received: number;
  duplicates: number;
  /** ms, one per event received: reader got it minus sent. */
  latencies: number[];
  /** ms, one per successful POST: 200 reply in minus sent. */
  ackLatencies: number[];
}

/** How long to wait, after the last send, for the reader to catch up. */
const DRAIN_MS = 5_000;

interface Envelope {
  body: string;
}

interface SentBody {
  n: number;
  sentAt: number;
}

type OnBatch = (events: Envelope[], receivedAt: number) => void;

interface Reader {
  /** Resolves once the reader holds a position, so nothing sent afterwards is missed. */
  ready: Promise<void>;
  /** Resolves when stopped; rejects if reading failed. */
  finished: Promise<void>;
  stop(): void;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** performance.now() when the whole reply was in. */
  at: number;
}

function exchange(url: string, options: RequestOptions, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), at: performance.now() }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function nextOffset(reply: Reply): string {
  const offset = reply.headers["stream-next-offset"];
  if (typeof offset !== "string") throw new Error(`a read answered ${reply.status} without Stream-Next-Offset`);
  return offset;
}

function longPollReader(inbox: Inbox, onBatch: OnBatch): Reader {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const controller = new AbortController();
  const options: RequestOptions = { agent, signal: controller.signal, headers: { authorization: `Bearer ${inbox.token}` } };
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const finished = (async () => {
    // A plain read at "now" pins the tail first; long-polls then go on from there.
    let offset = nextOffset(await exchange(`${inbox.streamUrl}?offset=now`, options));
    markReady();
    for (;;) {
      const reply = await exchange(`${inbox.streamUrl}?offset=${offset}&live=long-poll`, options);
      if (reply.status === 200) onBatch(JSON.parse(reply.body) as Envelope[], reply.at);
      else if (reply.status !== 204) throw new Error(`long-poll read answered ${reply.status}: ${reply.body}`);
      offset = nextOffset(reply);
    }
  })()
    .catch((error: unknown) => {
      if (!controller.signal.aborted) throw error;
    })
    .finally(() => agent.destroy());
  return { ready, finished, stop: () => controller.abort() };
}

function parseSseEvent(block: string): { type: string; data: string } {
  let type = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  return { type, data: data.join("\n") };
}

function sseReader(inbox: Inbox, onBatch: OnBatch): Reader {
  const controller = new AbortController();
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const finished = new Promise<void>((resolve, reject) => {
    const settle = (error: Error) => (controller.signal.aborted ? resolve() : reject(error));
    const url = `${inbox.streamUrl}?offset=now&live=sse&token=${encodeURIComponent(inbox.token)}`;
    const req = request(url, { signal: controller.signal, headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        settle(new Error(`SSE read answered ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const event = parseSseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          // The first control event comes at once and means the server holds our position.
          if (event.type === "control") markReady();
          else if (event.type === "data") onBatch(JSON.parse(event.data) as Envelope[], at);
        }
      });
      res.on("error", settle);
      res.on("close", () => settle(new Error("the SSE stream ended early")));
    });
    req.on("error", settle);
    req.end();
  });
  return { ready, finished, stop: () => controller.abort() };
}

/** Sends `rate × seconds` POSTs on a fixed schedule; each body is built at its send time. */
async function sendPaced(
  url: string,
  options: ReaderLatencyOptions,
): Promise<{ sent: number; failures: number; rate: number; ackLatencies: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const total = Math.round(options.rate * options.seconds);
  const interval = 1000 / options.rate;
  const ackLatencies: number[] = [];
  const post = async (n: number): Promise<boolean> => {
    const sentAt = performance.now();
    const body = paddedJson({ n, sentAt }, options.bodyBytes);
    const headers = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) };
    try {
      const reply = await exchange(url, { method: "POST", agent, headers }, body);
      if (reply.status !== 200) return false;
      ackLatencies.push(reply.at - sentAt);
      return true;
    } catch {
      return false;
    }
  };
  const replies: Array<Promise<boolean>> = [];
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (replies.length < due) replies.push(post(replies.length));
      if (replies.length < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const elapsedSeconds = (performance.now() - start + interval) / 1000;
  const ok = await Promise.all(replies);
  agent.destroy();
  return { sent: total, failures: ok.filter((success) => !success).length, rate: total / elapsedSeconds, ackLatencies };
}

export async function measureReaderLatency(mode: ReaderMode, inbox: Inbox, options: ReaderLatencyOptions): Promise<ReaderLatencyResult> {
  const seen = new Set<number>();
  const latencies: number[] = [];
  let duplicates = 0;
  const onBatch: OnBatch = (events, receivedAt) => {
    for (const event of events) {
      const { n, sentAt } = JSON.parse(event.body) as SentBody;
      if (seen.has(n)) {
        duplicates++;
        continue;
      }
      seen.add(n);
      latencies.push(receivedAt - sentAt);
    }
  };
  const reader = mode === "sse" ? sseReader(inbox, onBatch) : longPollReader(inbox, onBatch);
  let readerError: unknown;
  const finished = reader.finished.catch((error: unknown) => {
    readerError = error;
  });
  try {
    await Promise.race([reader.ready, finished]);
    if (readerError !== undefined) throw readerError;
    const sending = await sendPaced(inbox.ingestUrl, options);
    const expected = sending.sent - sending.failures;
    const deadline = performance.now() + DRAIN_MS;
    while (seen.size < expected && readerError === undefined && performance.now() < deadline) await sleep(20);
    if (readerError !== undefined) throw readerError;
    return {
      sent: sending.sent,
      sendFailures: sending.failures,
      sendRate: sending.rate,
      received: seen.size,
      duplicates,
      latencies,
      ackLatencies: sending.ackLatencies,
    };
  } finally {
    reader.stop();
    await finished;
  }
}
