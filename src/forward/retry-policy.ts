/*
 * What to do after a delivery attempt, and how long to wait before the next one:
 * network errors, 5xx, 408 and 429 are retried with exponential backoff and full
 * jitter, honouring Retry-After; other 4xx follow --on-4xx.
 */
export type On4xx = "retry" | "skip" | "stop";

export type AttemptOutcome = { kind: "response"; status: number; retryAfter?: string } | { kind: "error"; message: string };

export type Verdict = "delivered" | "retry" | "skip" | "stop";

export function judge(outcome: AttemptOutcome, on4xx: On4xx): Verdict {
  if (outcome.kind === "error") return "retry";
  const { status } = outcome;
  if (status >= 200 && status < 300) return "delivered";
  if (status >= 500 || status === 408 || status === 429) return "retry";
  if (status >= 400) return on4xx;
  // 1xx/3xx: the target did not take the event; try again (redirects are not followed).
  return "retry";
}

export const MIN_DELAY_MS = 250;
export const MAX_DELAY_MS = 30_000;
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS);
}

/** Delay before attempt number `attempt + 1` (attempt counts from 1). */
export function retryDelay(attempt: number, outcome: AttemptOutcome, random = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** Math.min(attempt - 1, 20));
  const backoff = Math.max(MIN_DELAY_MS / 2, Math.round(ceiling * random()));
  const asked = outcome.kind === "response" ? parseRetryAfter(outcome.retryAfter) : undefined;
  return asked === undefined ? backoff : Math.max(asked, MIN_DELAY_MS / 2);
}
