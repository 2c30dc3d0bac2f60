/*
 * The fanout phase (issue #15 row 5): one event reaching 10,000 live SSE readers of one
 * inbox. The readers live in READER_PROCESSES child processes (bench/sse-readers-child.ts,
 * 2,500 connections each, all from 127.0.0.1); once every one has its first control
 * event, a sender child POSTs one event, and the figure is the time from that POST's
 * 2xx reply until the last reader has it (CLOCK_MONOTONIC in both children). That is
 * done EVENTS times, one event at a time (the next is sent once all readers have the
 * previous one); the verdict takes the median. The server's RSS is read with all
 * readers attached, after the events. The baseline is the relay that stores nothing
 * (bench/relay-server.ts) fanning the same events out to as many readers.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { startRelay, startTailhook } from "./children.js";
import { runSender, startReaders, type ReadersChild } from "./load-children.js";
import { rssNowKb } from "./rss.js";

export interface FanoutOptions {
  readers: number;
  readerProcesses: number;
  events: number;
  bodyBytes: number;
}

export interface FanoutRun {
  /** ms from each event's 2xx reply until the last reader had it. */
  lastReaderMs: number[];
  /** Readers that got each event. */
  delivered: number[];
  /** ms it took to attach all readers. */
  attachMs: number;
  rssKb: number;
  closed: number;
}

export interface FanoutFigures {
  options: FanoutOptions;
  relay: FanoutRun;
  tailhook: FanoutRun;
}

const DELIVERY_TIMEOUT_MS = 30_000;

async function runFanout(pid: number, ingestUrl: string, sseUrl: string, options: FanoutOptions): Promise<FanoutRun> {
  const perProcess = Math.ceil(options.readers / options.readerProcesses);
  const children: ReadersChild[] = [];
  const attachStart = performance.now();
  try {
    for (let index = 0; index < options.readerProcesses; index++) {
      const connections = Math.min(perProcess, options.readers - index * perProcess);
      children.push(startReaders({ url: sseUrl, connections }, `fanout-readers-${index + 1}`));
    }
    await Promise.all(children.map((child) => child.ready));
    const attachMs = performance.now() - attachStart;
    const lastReaderMs: number[] = [];
    const delivered: number[] = [];
    let closed = 0;
    for (let n = 0; n < options.events; n++) {
      const sending = await runSender(
        { url: ingestUrl, rate: 1, count: 1, connections: 1, bodyBytes: options.bodyBytes, firstN: n },
        "fanout-sender",
      );
      const ack = sending.acks[0];
      if (ack === undefined) throw new Error(`fanout: the POST of event ${n} failed`);
      const deadline = performance.now() + DELIVERY_TIMEOUT_MS;
      for (;;) {
        const reports = await Promise.all(children.map((child) => child.report()));
        const rows = reports.map((report) => report.rows.find(([row]) => row === n));
        const got = rows.reduce((sum, row) => sum + (row?.[4] ?? 0), 0);
        closed = reports.reduce((sum, report) => sum + report.closed, 0);
        if (got >= options.readers || performance.now() > deadline) {
          const last = Math.max(...rows.map((row) => row?.[3] ?? Number.NaN));
          lastReaderMs.push(got >= options.readers ? last - ack[2] : Number.NaN);
          delivered.push(got);
          break;
        }
        await sleep(20);
      }
    }
    return { lastReaderMs, delivered, attachMs, rssKb: rssNowKb(pid), closed };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
}

export async function measureFanout(options: FanoutOptions, progress: (message: string) => void): Promise<FanoutFigures> {
  progress(`fanout: relay, one event at a time to ${options.readers} SSE readers in ${options.readerProcesses} processes`);
  const relayServer = await startRelay();
  const relay = await runFanout(relayServer.pid, `${relayServer.url}/ingest`, `${relayServer.url}/sse`, options).finally(() =>
    relayServer.stop(),
  );
  progress(`fanout: tailhook, one event at a time to ${options.readers} SSE readers of one inbox`);
  // The connection caps (10,000 in all, 1,000 per address by default) would refuse the readers.
  const server = await startTailhook({ env: { TAILHOOK_MAX_CONNECTIONS: "0", TAILHOOK_MAX_CONNECTIONS_PER_ADDRESS: "0" } });
  try {
    const inbox = await server.createInbox();
    const sseUrl = `${inbox.streamUrl}?offset=now&live=sse&token=${encodeURIComponent(inbox.token)}`;
    return { options, relay, tailhook: await runFanout(server.pid, inbox.ingestUrl, sseUrl, options) };
  } finally {
    await server.stop();
  }
}
