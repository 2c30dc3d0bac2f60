/*
 * The `ds` phase: tailhook's Durable Streams endpoint (/v1/stream/<path>, `serve
 * --open`) against the reference server (@durable-streams/server, file-backed), in
 * the same run, on JSON-mode streams:
 *   1. append throughput: autocannon POSTs a small JSON body over many connections;
 *   2. the same with one SSE reader following the stream from -1 (in a child
 *      process), which must end up with every message the stream holds;
 *   3. append→reader latency: a paced writer in a child process puts its send time
 *      in each body, an SSE reader in this thread takes receive time − send time.
 *
 * The two cores are shared with other jobs whose load comes and goes over tens of
 * seconds, so one 10 s run per figure gave ratios that swung by ±50%. Instead, both
 * servers run side by side and every figure is the sum of short windows taken in
 * turns: for 1 and 2, each round loads (reference, plain), (tailhook, plain),
 * (tailhook, with reader), (reference, with reader) for windowSeconds (2) each, the next
 * round in the opposite order, until each has BENCH_SECONDS. Only one window runs at
 * a time; after each, the bench waits until that stream's tail has stopped moving
 * (the reference server still appends the requests that were in flight for a few
 * hundred ms) and its reader has reached the tail, so no window pays for another's
 * leftovers. 3 runs the same way on two fresh servers.
 */
import autocannon from "autocannon";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { spawnNode, stopChild } from "./children.js";
import {
  countMessages,
  createJsonStream,
  settledTailOffset,
  startDsServer,
  tailOffset,
  type DsServer,
  type DsServerKind,
} from "./ds-servers.js";
import type { SseReaderArgs, SseReaderReply } from "./ds-sse-reader-child.js";
import { followSse, type SseFollower, type SseState } from "./ds-sse.js";
import { cpuSeconds } from "./rss.js";
import { runSender } from "./load-children.js";
import { monotonicMs, paddedJson, summarize } from "./stats.js";

export interface DsOptions {
  servers: DsServerKind[];
  connections: number;
  /** Measured seconds per figure, split into windows. */
  seconds: number;
  /** One turn of load. */
  windowSeconds: number;
  warmupSeconds: number;
  bodyBytes: number;
  latency: { rate: number; connections: number };
  progress(message: string): void;
}

export interface DsLoadFigures {
  /** 2xx replies / loaded seconds, over all windows. */
  requestsPerSecond: number;
  /** The same per window. */
  windowRates: number[];
  seconds: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** 2xx replies. */
  acknowledged: number;
  /** Messages the stream holds at the end (catch-up reads from -1). */
  stored: number;
  /** Server process CPU from each window's start until its stream settled, µs per stored message. */
  serverCpuUs: number;
}

export interface DsReaderFigures extends DsLoadFigures {
  /** Messages in the reader's data events at the end. */
  readerMessages: number;
  readerDataEvents: number;
  readerReconnects: number;
  /** Per window: ms from its end until the reader stood at the final tail. */
  readerLagMs: number[];
}

export interface DsLatencyFigures {
  sent: number;
  sendFailures: number;
  /** Achieved send rate while sending. */
  sendRate: number;
  received: number;
  duplicates: number;
  /** ms, receive − send, one per message received. */
  latencies: number[];
  /** ms, send → 2xx reply in. */
  ackLatencies: number[];
  readerReconnects: number;
}

export interface DsServerFigures {
  kind: DsServerKind;
  name: string;
  append?: DsLoadFigures;
  withReader?: DsReaderFigures;
  latency?: DsLatencyFigures;
  /** What failed outright, with why. */
  failures: string[];
}

const READY_TIMEOUT_MS = 10_000;
/** performance.now() and CLOCK_MONOTONIC tick together; this is their fixed offset in this process. */
const PERFORMANCE_TO_MONOTONIC = monotonicMs() - performance.now();
/** How long a stream may take, after a window, to settle and its reader to reach the tail. */
const SETTLE_TIMEOUT_MS = 30_000;
/** A tail counts as final once it has not moved for this long (after each window; the final count waits longer). */
const WINDOW_QUIET_MS = 200;
const FINAL_QUIET_MS = 500;

let streamCounter = 0;
const streamName = (what: string) => `${what}-${process.pid}-${++streamCounter}`;
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error)).split("\n")[0]!;

/** The SSE reader child of the "with reader" streams (bench/ds-sse-reader-child.ts), driven by request/reply messages. */
class ReaderThread {
  private readonly child: ChildProcess;
  private error: Error | undefined;
  private waiting: Array<{ resolve(state: SseState): void; reject(error: Error): void }> = [];
  readonly ready: Promise<void>;

  constructor(data: SseReaderArgs) {
    const script = fileURLToPath(new URL("./ds-sse-reader-child.js", import.meta.url));
    this.child = spawnNode([script, JSON.stringify(data)], process.env, true, true);
    this.child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`[ds-reader] ${chunk.toString("utf8")}`));
    let markReady = () => {};
    let failReady = (_error: Error) => {};
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    const timer = setTimeout(
      () => failReady(new Error(`the SSE reader was not up to date within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    this.child.on("message", (reply: SseReaderReply) => {
      if (reply.type === "ready") {
        clearTimeout(timer);
        markReady();
      } else if (reply.type === "error") {
        this.fail(new Error(`SSE reader: ${reply.message}`));
        clearTimeout(timer);
        failReady(this.error!);
      } else {
        this.waiting.shift()?.resolve(reply.state);
      }
    });
    this.child.once("exit", (code, signal) => {
      const error = new Error(`the SSE reader child exited (${signal ?? code})`);
      this.fail(error);
      clearTimeout(timer);
      failReady(error);
    });
  }

  private fail(error: Error): void {
    this.error ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }

  private ask(request: "report" | "stop"): Promise<SseState> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.send(request);
    });
  }

  report(): Promise<SseState> {
    return this.ask("report");
  }

  async stop(): Promise<void> {
    if (!this.error) await this.ask("stop").catch(() => undefined);
    await stopChild(this.child);
  }
}

interface WindowResult {
  ok: number;
  non2xx: number;
  errors: number;
  /** Loaded seconds, as autocannon timed them (it stops at its next 1 s sample tick after `duration`). */
  seconds: number;
  latencies: number[];
}

function runWindow(url: string, body: string, connections: number, seconds: number): Promise<WindowResult> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url, method: "POST", headers: { "content-type": "application/json" }, body, connections, duration: seconds, timeout: 10 },
      (error, result) => {
        if (error) return reject(error);
        resolve({ ok: latencies.length, non2xx: result.non2xx, errors: result.errors, seconds: result.duration, latencies });
      },
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
}

/** One stream under closed-loop load: a server's plain stream, or its stream with a reader. */
interface LoadTarget {
  entry: DsServerFigures;
  server: DsServer;
  url: string;
  reader?: ReaderThread;
  windows: WindowResult[];
  cpu: number;
  lags: number[];
  failed: boolean;
}

/**
 * Waits until the stream's tail has not moved for quietMs and, with a reader, until
 * the reader stands there too; returns when the reader first stood at that final
 * tail (NaN without a reader).
 */
async function settle(target: LoadTarget, quietMs: number): Promise<number> {
  if (!target.reader) {
    await settledTailOffset(target.url, quietMs, SETTLE_TIMEOUT_MS);
    return Number.NaN;
  }
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let tail = await tailOffset(target.url);
  let tailSince = performance.now();
  let state = await target.reader.report();
  let atTailSince = Number.NaN;
  for (;;) {
    const now = performance.now();
    if (state.offset === tail) {
      if (Number.isNaN(atTailSince)) atTailSince = now;
      if (now - tailSince >= quietMs) return atTailSince;
    } else {
      atTailSince = Number.NaN;
    }
    if (now > deadline)
      throw new Error(
        `the SSE reader was not at the tail ${SETTLE_TIMEOUT_MS} ms after a window (tail ${tail}, reader at ${state.offset})`,
      );
    await sleep(10);
    const next = await tailOffset(target.url);
    if (next !== tail) {
      tail = next;
      tailSince = performance.now();
    }
    state = await target.reader.report();
  }
}

async function loadWindow(target: LoadTarget, body: string, options: DsOptions): Promise<void> {
  const cpuBefore = cpuSeconds(target.server.pid);
  const window = await runWindow(target.url, body, options.connections, options.windowSeconds);
  const end = performance.now();
  const atTail = await settle(target, WINDOW_QUIET_MS);
  target.cpu += cpuSeconds(target.server.pid) - cpuBefore;
  target.windows.push(window);
  if (target.reader) target.lags.push(atTail - end);
}

async function loadFigures(target: LoadTarget): Promise<DsLoadFigures> {
  await settle(target, FINAL_QUIET_MS);
  const { messages: stored } = await countMessages(target.url);
  const sum = (pick: (window: WindowResult) => number) => target.windows.reduce((total, window) => total + pick(window), 0);
  const acknowledged = sum((window) => window.ok);
  const seconds = sum((window) => window.seconds);
  const { p50, p99 } = summarize(target.windows.flatMap((window) => window.latencies));
  return {
    requestsPerSecond: acknowledged / seconds,
    windowRates: target.windows.map((window) => window.ok / window.seconds),
    seconds,
    p50,
    p99,
    non2xx: sum((window) => window.non2xx),
    errors: sum((window) => window.errors),
    acknowledged,
    stored,
    serverCpuUs: (target.cpu / stored) * 1e6,
  };
}

async function startServers(
  figures: DsServerFigures[],
  progress: (message: string) => void,
): Promise<Array<{ entry: DsServerFigures; server: DsServer }>> {
  const started: Array<{ entry: DsServerFigures; server: DsServer }> = [];
  for (const entry of figures) {
    try {
      started.push({ entry, server: await startDsServer(entry.kind) });
    } catch (error) {
      progress(`ds: ${entry.name} did not start: ${errorText(error)}`);
      entry.failures.push(`start-up: ${errorText(error)}`);
    }
  }
  return started;
}

/** 1 and 2: plain and with-reader append throughput, in alternating windows. */
async function measureThroughput(figures: DsServerFigures[], body: string, options: DsOptions): Promise<void> {
  const servers = await startServers(figures, options.progress);
  const targets: LoadTarget[] = [];
  try {
    for (const { entry, server } of servers) {
      try {
        options.progress(`ds: ${entry.name}, ${options.warmupSeconds} s warm-up`);
        const warmup = server.streamUrl(streamName("warmup"));
        await createJsonStream(warmup);
        await runWindow(warmup, body, options.connections, options.warmupSeconds);
        await settledTailOffset(warmup, FINAL_QUIET_MS, SETTLE_TIMEOUT_MS);
        const plain: LoadTarget = {
          entry,
          server,
          url: server.streamUrl(streamName("append")),
          windows: [],
          cpu: 0,
          lags: [],
          failed: false,
        };
        const withReader: LoadTarget = { ...plain, url: server.streamUrl(streamName("reader")), windows: [], lags: [] };
        await createJsonStream(plain.url);
        await createJsonStream(withReader.url);
        withReader.reader = new ReaderThread({ url: withReader.url, offset: "-1" });
        await withReader.reader.ready;
        targets.push(plain, withReader);
      } catch (error) {
        options.progress(`ds: ${entry.name}, setting up the append runs failed: ${errorText(error)}`);
        entry.failures.push(`append runs: ${errorText(error)}`);
      }
    }
    // Plain streams first, then the reader streams in reverse: reference, tailhook, tailhook+reader, reference+reader.
    const order = [...targets.filter((target) => !target.reader), ...targets.filter((target) => target.reader).reverse()];
    const rounds = Math.max(1, Math.round(options.seconds / options.windowSeconds));
    for (let round = 0; round < rounds; round++) {
      options.progress(`ds append throughput: round ${round + 1} of ${rounds}, ${order.length} windows of ${options.windowSeconds} s`);
      for (const target of round % 2 === 0 ? order : [...order].reverse()) {
        if (target.failed) continue;
        try {
          await loadWindow(target, body, options);
        } catch (error) {
          const what = target.reader ? "append with a reader" : "append";
          options.progress(`ds: ${target.entry.name}, ${what} failed: ${errorText(error)}`);
          target.entry.failures.push(`${what}: ${errorText(error)}`);
          target.failed = true;
        }
      }
    }
    for (const target of targets) {
      if (target.failed) continue;
      try {
        const load = await loadFigures(target);
        if (!target.reader) {
          target.entry.append = load;
          continue;
        }
        const state = await target.reader.report();
        target.entry.withReader = {
          ...load,
          readerMessages: state.messages,
          readerDataEvents: state.dataEvents,
          readerReconnects: state.reconnects,
          readerLagMs: target.lags,
        };
      } catch (error) {
        target.entry.failures.push(`${target.reader ? "append with a reader" : "append"}: ${errorText(error)}`);
      }
    }
  } finally {
    await Promise.all(targets.map((target) => target.reader?.stop()));
    for (const { server } of servers) await server.stop();
  }
}

/** One server's side of 3: a stream, its SSE follower in this thread, and the paced sends so far. */
interface LatencyTarget {
  entry: DsServerFigures;
  server: DsServer;
  url: string;
  follower: SseFollower;
  /** The sender child's keep-alive connections. */
  connections: number;
  recording: boolean;
  next: number;
  sent: number;
  sendFailures: number;
  sendSeconds: number;
  seen: Set<number>;
  duplicates: number;
  latencies: number[];
  ackLatencies: number[];
  readerError?: unknown;
  failed: boolean;
}

/**
 * POSTs rate × seconds bodies on a fixed schedule (whatever the replies do) from a
 * sender child (bench/pace-sender-child.ts), so the sender shares no event loop with
 * the reader in this thread; each body carries its send time on CLOCK_MONOTONIC.
 */
async function sendPaced(target: LatencyTarget, rate: number, seconds: number, bodyBytes: number): Promise<number> {
  const total = Math.round(rate * seconds);
  const report = await runSender(
    { url: target.url, rate, count: total, connections: target.connections, bodyBytes, firstN: target.next },
    "ds-sender",
  );
  target.next += total;
  if (target.recording) {
    for (const [, sentAt, ackAt] of report.acks) target.ackLatencies.push(ackAt - sentAt);
    target.sent += total;
    target.sendFailures += report.failures;
    target.sendSeconds += total / report.rate;
  }
  return total - report.failures;
}

/** A paced window, then wait until the reader has every message sent so far (or the settle timeout). */
async function latencyWindow(target: LatencyTarget, seconds: number, options: DsOptions): Promise<void> {
  const before = target.seen.size;
  const delivered = await sendPaced(target, options.latency.rate, seconds, options.bodyBytes);
  const expected = before + delivered;
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  while (target.seen.size < expected && target.readerError === undefined && performance.now() < deadline) await sleep(10);
  if (target.readerError !== undefined) throw target.readerError;
}

/** 3: append→reader latency, paced windows taken in turns on two fresh servers. */
async function measureLatency(figures: DsServerFigures[], options: DsOptions): Promise<void> {
  const servers = await startServers(figures, options.progress);
  const targets: LatencyTarget[] = [];
  try {
    for (const { entry, server } of servers) {
      try {
        const url = server.streamUrl(streamName("latency"));
        await createJsonStream(url);
        const target: LatencyTarget = {
          entry,
          server,
          url,
          connections: options.latency.connections,
          recording: false,
          next: 0,
          sent: 0,
          sendFailures: 0,
          sendSeconds: 0,
          seen: new Set(),
          duplicates: 0,
          latencies: [],
          ackLatencies: [],
          failed: false,
          follower: followSse({
            url,
            offset: "-1",
            onMessages(messages, receivedAt) {
              for (const message of messages) {
                const { n, sentAt } = message as { n: number; sentAt: number };
                if (target.seen.has(n)) {
                  target.duplicates++;
                  continue;
                }
                target.seen.add(n);
                // receivedAt is performance.now(); sentAt is the sender child's CLOCK_MONOTONIC.
                if (target.recording) target.latencies.push(receivedAt + PERFORMANCE_TO_MONOTONIC - sentAt);
              }
            },
          }),
        };
        target.follower.finished.catch((error: unknown) => (target.readerError = error));
        targets.push(target);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`the SSE reader was not up to date within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        });
        await Promise.race([target.follower.ready, target.follower.finished, timeout]).finally(() => clearTimeout(timer));
        if (target.readerError !== undefined) throw target.readerError;
        options.progress(`ds: ${entry.name}, one paced second to warm up`);
        await latencyWindow(target, 1, options); // not recorded
        target.recording = true;
      } catch (error) {
        options.progress(`ds: ${entry.name}, setting up the latency run failed: ${errorText(error)}`);
        entry.failures.push(`append→reader latency: ${errorText(error)}`);
        const target = targets.find((candidate) => candidate.entry === entry);
        if (target) target.failed = true;
      }
    }
    const rounds = Math.max(1, Math.round(options.seconds / options.windowSeconds));
    for (let round = 0; round < rounds; round++) {
      options.progress(
        `ds append→reader latency: round ${round + 1} of ${rounds}, ${options.latency.rate}/s for ${options.windowSeconds} s per server`,
      );
      for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
        if (target.failed) continue;
        try {
          await latencyWindow(target, options.windowSeconds, options);
        } catch (error) {
          options.progress(`ds: ${target.entry.name}, append→reader latency failed: ${errorText(error)}`);
          target.entry.failures.push(`append→reader latency: ${errorText(error)}`);
          target.failed = true;
        }
      }
    }
    for (const target of targets) {
      if (target.failed) continue;
      target.entry.latency = {
        sent: target.sent,
        sendFailures: target.sendFailures,
        sendRate: target.sent / target.sendSeconds,
        received: target.latencies.length,
        duplicates: target.duplicates,
        latencies: target.latencies,
        ackLatencies: target.ackLatencies,
        readerReconnects: target.follower.state.reconnects,
      };
    }
  } finally {
    for (const target of targets) {
      target.follower.stop();
      await target.follower.finished.catch(() => undefined);
    }
    for (const { server } of servers) await server.stop();
  }
}

export async function measureDs(options: DsOptions): Promise<DsServerFigures[]> {
  const body = paddedJson({ n: 123 }, options.bodyBytes);
  const figures = options.servers.map((kind): DsServerFigures => ({
    kind,
    name: kind === "tailhook" ? "tailhook" : "@durable-streams/server",
    failures: [],
  }));
  await measureThroughput(figures, body, options);
  await measureLatency(figures, options);
  return figures;
}
