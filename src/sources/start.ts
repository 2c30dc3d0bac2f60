/*
 * Starts the source runner for a running tailhook: on a store shared by several
 * processes only while this one leads "sources", otherwise at once. Returns what stops it.
 */
import type { Logger } from "pino";
import type { ServerConfig } from "../config.js";
import type { Store } from "../storage/store.js";
import type { GeneralStreams } from "../storage/streams.js";
import { followLeadership } from "../subscriptions/follow-leadership.js";
import { SourceRecords } from "./records.js";
import { SourceRunner } from "./runner.js";

export interface SourceOptions {
  /** Events a Stripe run lists at most (tests use a small one). */
  stripeMaxEventsPerRun?: number;
}

export async function startSources(
  store: Store,
  records: GeneralStreams,
  config: ServerConfig,
  logger: Logger,
  options: SourceOptions = {},
): Promise<() => Promise<void>> {
  const runner = new SourceRunner({
    store,
    records: new SourceRecords(records),
    apiUrls: { github: config.githubApiUrl, stripe: config.stripeApiUrl },
    maxBodyBytes: config.maxBodyBytes,
    logger,
    ...options,
  });
  const leadership = store.leadership?.("sources", (error) => logger.debug({ err: error }, "source leadership check failed"));
  if (leadership) return followLeadership(runner, leadership, logger, "sources");
  await runner.lead();
  return () => runner.close();
}
