/*
 * The live phase (issue #15 rows 3 and 4): ingest → SSE reader latency under an
 * open-loop load, tailhook against a relay that stores nothing (bench/relay-server.ts).
 * Three processes besides the server: the paced sender (bench/pace-sender-child.ts),
 * one SSE reader (bench/sse-readers-child.ts), and this one, which only collects. Each
 * event's latency is its first receive time minus its send time, both on
 * CLOCK_MONOTONIC. "Holds the rate": 2xx replies per second from the first send to
 * the last reply, over the offered rate. A paced warm-up second (its events numbered
 * apart) comes before each measured run, on the same reader. The disk's own latency
 * of one small write + fdatasync is measured too: the floor of a commit round trip.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { startRelay, startTailhook } from "./children.js";
import { dirname } from "node:path";
import { runDiskSync, runSender, startReaders, type DiskSyncResult } from "./load-children.js";

export interface LiveRunOptions {
  rate: number;
  seconds: number;
  connections: number;
  bodyBytes: number;
}

export interface LiveRunResult {
  sent: number;
  failures: number;
  acknowledged: number;
  received: number;
  duplicates: number;
  /** 2xx replies per second, first send to last reply. */
  achievedRate: number;
  latencies: number[];
  ackLatencies: number[];
}

export interface LiveFigures {
  options: LiveRunOptions;
  relay: LiveRunResult;
  tailhook: LiveRunResult;
  /**
   * The disk's own floor for one small durable commit, measured next to tailhook's
   * data folder just before it: with one commit per round trip, `connections` senders
   * get at most connections / syncP50 replies per second.
   */
  disk: DiskSyncResult;
}

/** Roughly one small commit's WAL write: a few pages. */
const DISK_CHUNK_BYTES = 8 * 1024;
const DISK_SECONDS = 2;

const WARM_UP_FIRST_N = 1_000_000_000;
const DRAIN_MS = 5_000;

async function runOnce(ingestUrl: string, sseUrl: string, options: LiveRunOptions): Promise<LiveRunResult> {
  const readers = startReaders({ url: sseUrl, connections: 1 }, "live-reader");
  try {
    await readers.ready;
    const common = { url: ingestUrl, rate: options.rate, connections: options.connections, bodyBytes: options.bodyBytes };
    await runSender({ ...common, count: options.rate, firstN: WARM_UP_FIRST_N }, "live-sender");
    const sending = await runSender({ ...common, count: Math.round(options.rate * options.seconds) }, "live-sender");
    const acked = new Set(sending.acks.map(([n]) => n));
    const deadline = performance.now() + DRAIN_MS;
    let report = await readers.report();
    const measured = () => report.rows.filter(([n]) => n < WARM_UP_FIRST_N);
    while (measured().filter(([n]) => acked.has(n)).length < acked.size && performance.now() < deadline) {
      await sleep(50);
      report = await readers.report();
    }
    const rows = measured();
    const firstSend = Math.min(...sending.acks.map(([, sentAt]) => sentAt));
    const lastReply = Math.max(...sending.acks.map(([, , ackAt]) => ackAt));
    return {
      sent: sending.sent,
      failures: sending.failures,
      acknowledged: sending.acks.length,
      received: rows.length,
      duplicates: report.duplicates,
      achievedRate: sending.acks.length / ((lastReply - firstSend) / 1000),
      latencies: rows.map(([, sentAt, first]) => first - sentAt),
      ackLatencies: sending.acks.map(([, sentAt, ackAt]) => ackAt - sentAt),
    };
  } finally {
    await readers.stop();
  }
}

/** One row: the relay, then tailhook (a fresh inbox on a fresh server), at options.rate. */
export async function measureLive(options: LiveRunOptions): Promise<LiveFigures> {
  const relayServer = await startRelay();
  const relay = await runOnce(`${relayServer.url}/ingest`, `${relayServer.url}/sse`, options).finally(() => relayServer.stop());
  const server = await startTailhook();
  try {
    const disk = await runDiskSync(dirname(server.dataDir), DISK_SECONDS, DISK_CHUNK_BYTES);
    const inbox = await server.createInbox();
    const sseUrl = `${inbox.streamUrl}?offset=now&live=sse&token=${encodeURIComponent(inbox.token)}`;
    return { options, relay, tailhook: await runOnce(inbox.ingestUrl, sseUrl, options), disk };
  } finally {
    await server.stop();
  }
}
