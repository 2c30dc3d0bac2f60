/*
 * When a source runs next: its interval after a good run; after failures, an
 * exponential back-off from one second with jitter, capped at the interval (never
 * slower than normal) and at 15 minutes; never before the provider's rate-limit reset.
 */
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 15 * 60_000;

export function backoffDelay(failures: number, intervalMs: number, random = Math.random): number {
  const ceiling = Math.min(FIRST_BACKOFF_MS * 2 ** Math.min(failures - 1, 20), MAX_BACKOFF_MS, Math.max(intervalMs, FIRST_BACKOFF_MS));
  // Jitter in [ceiling/2, ceiling]: sources failing together (a provider outage) spread out.
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export function nextRunAt(now: number, intervalMs: number, failures: number, rateLimitedUntil = 0): number {
  const delay = failures === 0 ? intervalMs : backoffDelay(failures, intervalMs);
  return Math.max(now + delay, rateLimitedUntil);
}
