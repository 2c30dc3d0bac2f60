/*
 * Sets the metrics up for one running tailhook: a fresh registry, the store seen
 * through instrumentStore, the scrape-time gauges, and the open listener when
 * --metrics-port asks for one (released with the rest at shutdown).
 */
import { join } from "node:path";
import { DATABASE_FILE } from "../storage/sqlite/data-folder.js";
import type { ServerConfig } from "../config.js";
import type { ReleaserStack } from "../shutdown.js";
import type { Store } from "../storage/store.js";
import { startMetricsListener, type MetricsListener } from "./http-metrics.js";
import { Metrics } from "./metrics.js";
import { registerScrapeGauges } from "./scrape-gauges.js";
import { registerSilenceGauge } from "./silence-gauge.js";
import { instrumentStore } from "./store-metrics.js";

export interface StartedMetrics {
  metrics: Metrics;
  /** The store to use from here on: the same store, counted. */
  store: Store;
  listener: MetricsListener | undefined;
}

export async function startMetrics(opened: Store, config: ServerConfig, releasers: ReleaserStack): Promise<StartedMetrics> {
  const metrics = new Metrics({ perInbox: config.metrics.perInbox, perInboxLimit: config.metrics.perInboxLimit });
  const store = instrumentStore(opened, metrics);
  registerScrapeGauges(metrics, {
    store,
    dataDir: config.dataDir,
    walFile: config.databaseUrl ? undefined : join(config.dataDir, `${DATABASE_FILE}-wal`),
  });
  registerSilenceGauge(metrics, store);
  if (config.metrics.port === undefined) return { metrics, store, listener: undefined };
  const listener = await startMetricsListener(metrics, config.metrics.port);
  releasers.push("metrics listener", () => listener.close());
  return { metrics, store, listener };
}
