/*
 * Gauges read at scrape time, not kept up to date on the hot path: consumer lag
 * (from the store), the SQLite WAL's size and the data folder's free disk space.
 * The lag scan is bounded (MAX_INBOXES inboxes, MAX_CONSUMERS consumers, one read per
 * lagging consumer) so that a scrape of a large server stays cheap; when it stopped
 * short, tailhook_consumer_lag_scan_truncated says so.
 */
import { stat, statfs } from "node:fs/promises";
import { Gauge } from "prom-client";
import type { Store } from "../storage/store.js";
import type { Metrics } from "./metrics.js";

const MAX_INBOXES = 1000;
const MAX_CONSUMERS = 1000;

export interface ScrapeSources {
  store: Store;
  /** The data folder (free disk space). */
  dataDir: string;
  /** The SQLite -wal file; undefined on PostgreSQL. */
  walFile: string | undefined;
}

interface Lag {
  inboxId: string;
  consumer: string;
  events: number;
  seconds: number;
}

function missing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

async function fileBytes(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if (missing(error)) return 0;
    throw error;
  }
}

async function freeBytes(folder: string): Promise<number> {
  const info = await statfs(folder);
  return info.bavail * info.bsize;
}

/** Every consumer's lag, within the scan's bounds. */
async function readLags(store: Store, now: number): Promise<{ lags: Lag[]; truncated: boolean }> {
  const inboxes = await store.listInboxes();
  const lags: Lag[] = [];
  const truncated = inboxes.length > MAX_INBOXES;
  for (const inbox of inboxes.slice(0, MAX_INBOXES)) {
    const consumers = await store.listConsumers(inbox.streamId);
    if (consumers.length === 0) continue;
    const stream = await store.getStreamById(inbox.streamId);
    if (!stream) continue;
    for (const consumer of consumers) {
      if (lags.length >= MAX_CONSUMERS) return { lags, truncated: true };
      const events = Math.max(0, stream.tailSeq - Math.max(consumer.committedSeq, stream.firstSeq - 1));
      let seconds = 0;
      if (events > 0) {
        const oldestAt = await store.messageTime(inbox.streamId, Math.max(consumer.committedSeq + 1, stream.firstSeq));
        if (oldestAt !== undefined) seconds = Math.max(0, (now - oldestAt) / 1000);
      }
      lags.push({ inboxId: inbox.id, consumer: consumer.name, events, seconds });
    }
  }
  return { lags, truncated };
}

export function registerScrapeGauges(metrics: Metrics, sources: ScrapeSources): void {
  const registers = [metrics.registry];
  const lagEventsMax = new Gauge({
    name: "tailhook_consumer_lag_events_max",
    help: "The largest consumer lag in events (tail minus committed offset) over all consumers.",
    registers,
  });
  const lagSecondsMax = new Gauge({
    name: "tailhook_consumer_lag_seconds_max",
    help: "Age in seconds of the oldest event some consumer has not acknowledged.",
    registers,
  });
  const consumers = new Gauge({ name: "tailhook_consumers", help: "Consumers counted by the lag scan.", registers });
  const truncated = new Gauge({
    name: "tailhook_consumer_lag_scan_truncated",
    help: "1 when the lag scan stopped at its bound (1000 inboxes or consumers), else 0.",
    registers,
  });
  const perConsumer = metrics.perInbox
    ? {
        events: new Gauge({
          name: "tailhook_consumer_lag_events",
          help: "Consumer lag in events, per inbox and consumer (the most lagging, up to the per-inbox limit).",
          labelNames: ["inbox", "consumer"] as const,
          registers,
        }),
        seconds: new Gauge({
          name: "tailhook_consumer_lag_seconds",
          help: "Age in seconds of the consumer's oldest unacknowledged event.",
          labelNames: ["inbox", "consumer"] as const,
          registers,
        }),
      }
    : undefined;
  const walBytes = new Gauge({
    name: "tailhook_sqlite_wal_bytes",
    help: "Size of the SQLite write-ahead log (0 on PostgreSQL).",
    registers,
  });
  const diskFree = new Gauge({
    name: "tailhook_data_dir_free_bytes",
    help: "Free disk space of the data folder's file system, for unprivileged users (statfs).",
    registers,
  });

  metrics.beforeScrape(async () => {
    const scan = await readLags(sources.store, Date.now());
    lagEventsMax.set(Math.max(0, ...scan.lags.map((lag) => lag.events)));
    lagSecondsMax.set(Math.max(0, ...scan.lags.map((lag) => lag.seconds)));
    consumers.set(scan.lags.length);
    truncated.set(scan.truncated ? 1 : 0);
    if (perConsumer) {
      perConsumer.events.reset();
      perConsumer.seconds.reset();
      const worst = [...scan.lags].sort((a, b) => b.events - a.events).slice(0, metrics.perInboxLimit);
      for (const lag of worst) {
        const labels = { inbox: lag.inboxId, consumer: lag.consumer };
        perConsumer.events.set(labels, lag.events);
        perConsumer.seconds.set(labels, lag.seconds);
      }
    }
    walBytes.set(sources.walFile ? await fileBytes(sources.walFile) : 0);
    diskFree.set(await freeBytes(sources.dataDir));
  });
}
