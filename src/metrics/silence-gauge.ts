/*
 * tailhook_inbox_silent, read at scrape time: how many inboxes with
 * `settings.expectEvery` got no event within it (core/silence.ts). With per-inbox
 * labels each such inbox has its own 0/1 series (up to the limit); without them, or
 * past the limit, inbox="_other" counts the silent ones, so sum() is always the total.
 */
import { Gauge } from "prom-client";
import { silenceOf } from "../core/silence.js";
import type { Store } from "../storage/store.js";
import { OTHER_INBOXES, type Metrics } from "./metrics.js";

/** The same bound as the lag scan: a scrape of a large server stays cheap. */
const MAX_WATCHED_INBOXES = 1000;

export function registerSilenceGauge(metrics: Metrics, store: Store): void {
  const silent = new Gauge({
    name: "tailhook_inbox_silent",
    help: 'Inboxes with settings.expectEvery that got no event within it (per inbox 0 or 1 with --metrics-per-inbox; inbox="_other" counts the rest).',
    labelNames: ["inbox"] as const,
    registers: [metrics.registry],
  });
  silent.set({ inbox: OTHER_INBOXES }, 0);

  metrics.beforeScrape(async () => {
    const now = Date.now();
    const watched = (await store.listInboxes()).filter((inbox) => inbox.settings.expectEvery !== undefined);
    const values = new Map<string, number>([[OTHER_INBOXES, 0]]);
    for (const inbox of watched.slice(0, MAX_WATCHED_INBOXES)) {
      const stream = await store.getStreamById(inbox.streamId);
      if (!stream) continue;
      const lastEventAt = stream.tailSeq > 0 ? ((await store.messageTime(inbox.streamId, stream.tailSeq)) ?? null) : null;
      const label = metrics.inboxLabel(inbox.id);
      const isSilent = silenceOf(inbox.settings, lastEventAt, inbox.createdAt, now).silent ? 1 : 0;
      values.set(label, (values.get(label) ?? 0) + isSilent);
    }
    silent.reset();
    for (const [inbox, value] of values) silent.set({ inbox }, value);
  });
}
