/*
 * Ingest→reader latency: an open-loop sender in a process of its own
 * (bench/pace-sender-child.ts) POSTs at a fixed rate (on a schedule, whatever the
 * replies do) over a few keep-alive connections, while one reader in this process
 * (long-poll or SSE; the process does nothing else meanwhile) follows the inbox from
 * offset "now". Each body carries its send time on CLOCK_MONOTONIC (stats.monotonicMs),
 * which both processes share; an event's latency is the time the reader got it minus that.
 */
import { onSseEvents } from "./sse-events.js";
import { Agent, request, type IncomingHttpHeaders, type RequestOptions } from "node:http";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { Inbox } from "./children.js";
import { runSender } from "./load-children.js";
import { monotonicMs } from "./stats.js";

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
  /** monotonicMs() when the whole reply was in. */
  at: number;
}

function exchange(url: string, options: RequestOptions, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), at: monotonicMs() }),
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
      onSseEvents(res, (event, at) => {
        // The first control event comes at once and means the server holds our position.
        if (event.type === "control") markReady();
        else if (event.type === "data") onBatch(JSON.parse(event.data) as Envelope[], at);
      });
      res.on("error", settle);
      res.on("close", () => settle(new Error("the SSE stream ended early")));
    });
    req.on("error", settle);
    req.end();
  });
  return { ready, finished, stop: () => controller.abort() };
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
    const report = await runSender({
      url: inbox.ingestUrl,
      rate: options.rate,
      count: Math.round(options.rate * options.seconds),
      connections: options.connections,
      bodyBytes: options.bodyBytes,
    });
    const sending = {
      sent: report.sent,
      failures: report.failures,
      rate: report.rate,
      ackLatencies: report.acks.map(([, sentAt, ackAt]) => ackAt - sentAt),
    };
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
