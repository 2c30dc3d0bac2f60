/*
 * Runs the subscription service only while this process leads. Several processes may
 * share one PostgreSQL database, and the service keeps its state in memory: two of
 * them running it would both deliver webhooks and overwrite each other's records.
 *
 * A term that fails to start (the database answered badly) is tried again shortly, as
 * long as we still lead.
 */
import type { Logger } from "pino";
import type { Leadership } from "../storage/store.js";

/** Work that runs only while this process leads (the subscription service, reconciliation sources). */
export interface LeaderWork {
  lead(): Promise<void>;
  follow(): Promise<void>;
  close(): Promise<void>;
}

const RETRY_START_MS = 1_000;

/**
 * Resolves once the first try for leadership is over (and, if it succeeded, the first
 * term has started or failed), so a process that can lead at once serves from the
 * start. Returns what stops it all: the term first, then the lock, so that no other
 * process leads while our deliveries are still on the wire.
 */
export async function followLeadership(
  host: LeaderWork,
  leadership: Leadership,
  logger: Logger,
  name = "subscriptions",
): Promise<() => Promise<void>> {
  let leading = false;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let latest: Promise<void> = Promise.resolve();

  const apply = (): void => {
    clearTimeout(retry);
    if (stopped) return;
    latest = (leading ? host.lead() : host.follow()).catch((error: unknown) => {
      if (!leading || stopped) return logger.error({ err: error }, `${name}: ending the term failed`);
      logger.error({ err: error }, `${name}: could not start; trying again shortly`);
      retry = setTimeout(apply, RETRY_START_MS);
      retry.unref();
    });
  };

  await leadership.start((now) => {
    leading = now;
    logger.info(now ? `${name}: this process leads and serves them` : `${name}: leadership lost; another process serves them`);
    apply();
  });
  await latest;

  return async () => {
    stopped = true;
    clearTimeout(retry);
    await host.close();
    await leadership.stop();
  };
}
