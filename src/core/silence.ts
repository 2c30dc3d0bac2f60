/*
 * The silence alarm: an inbox with `settings.expectEvery` (seconds) is silent once that
 * long has passed since its last event (since it was created, before the first one),
 * so a sender that stopped calling is noticed without anyone reading the events.
 * Pure: the clock comes in as `now`, so tests need no waiting.
 */
import type { InboxSettings } from "./types.js";

export interface Silence {
  silent: boolean;
  /** When the expected event became overdue (ms since the epoch); null while not silent. */
  silentSince: number | null;
}

/**
 * `lastEventAt` is the receive time of the newest event (ms), null when there is none.
 * When retention removed even the newest event its time is unknown and the inbox is
 * judged from `createdAt`, which can only make the alarm earlier, never hide it.
 */
export function silenceOf(settings: InboxSettings, lastEventAt: number | null, createdAt: number, now: number): Silence {
  if (settings.expectEvery === undefined) return { silent: false, silentSince: null };
  const overdueAt = (lastEventAt ?? createdAt) + settings.expectEvery * 1000;
  return now >= overdueAt ? { silent: true, silentSince: overdueAt } : { silent: false, silentSince: null };
}

/** What an inbox view says about its activity: the newest event and the alarm. */
export interface InboxActivity {
  lastSeq: number;
  lastEventAt: string | null;
  silent: boolean;
  silentSince: string | null;
}

export function inboxActivity(
  settings: InboxSettings,
  createdAt: number,
  lastSeq: number,
  lastEventAt: number | null,
  now: number,
): InboxActivity {
  const { silent, silentSince } = silenceOf(settings, lastEventAt, createdAt, now);
  return {
    lastSeq,
    lastEventAt: lastEventAt === null ? null : new Date(lastEventAt).toISOString(),
    silent,
    silentSince: silentSince === null ? null : new Date(silentSince).toISOString(),
  };
}
