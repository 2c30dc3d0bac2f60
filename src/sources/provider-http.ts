/*
 * The only way a source talks to a provider: one request at a time to a URL built
 * from the configured base and validated ids (never a URL from a reply), a timeout
 * per request, no redirects, a cap on the body, and rate limits honoured. Within a
 * run, a RequestBudget remembers "the provider said stop until t" so that no
 * further request goes out before then.
 */
import { parseRetryAfter } from "../forward/retry-policy.js";

/** A failed run's cause; retryAt (ms) when the provider said when to come back. */
export class SourceRunError extends Error {
  constructor(
    message: string,
    readonly retryAt?: number,
  ) {
    super(message);
  }
}

export interface ProviderResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** Never wait longer than this on a provider's word (a broken reset header must not park a source for days). */
const MAX_RATE_LIMIT_WAIT_MS = 60 * 60_000;
/** When a provider says "rate limited" but not until when. */
const DEFAULT_RATE_LIMIT_WAIT_MS = 60_000;
const MAX_PROVIDER_BODY_BYTES = 32 * 1024 * 1024;

export class RequestBudget {
  /** The provider asked us to send nothing before this (ms). */
  pausedUntil = 0;
}

/** A URL under `base`, from path segments that are encoded one by one; refuses anything that leaves base's origin. */
export function providerUrl(base: string, segments: Array<string | number>, query: Record<string, string | number | undefined> = {}): URL {
  const root = new URL(base);
  const path = segments.map((segment) => encodeURIComponent(String(segment))).join("/");
  const url = new URL(`${root.href.replace(/\/+$/, "")}/${path}`);
  for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
  if (url.origin !== root.origin) throw new SourceRunError(`refusing a URL outside ${root.origin}`);
  return url;
}

/** When a rate-limited answer says we may try again (ms), or undefined when it is not rate-limited. */
export function rateLimitedUntil(status: number, headers: Headers, now = Date.now()): number | undefined {
  const remaining = headers.get("x-ratelimit-remaining");
  const retryAfter = headers.get("retry-after") ?? undefined;
  // GitHub answers a primary limit with 403 (or 429) and x-ratelimit-remaining: 0, a secondary one with Retry-After.
  const limited = status === 429 || (status === 403 && (remaining === "0" || retryAfter !== undefined));
  if (!limited) return undefined;
  return now + Math.min(waitFromHeaders(headers, now) ?? DEFAULT_RATE_LIMIT_WAIT_MS, MAX_RATE_LIMIT_WAIT_MS);
}

/** Retry-After, else x-ratelimit-reset (epoch seconds), as a wait from now (ms). */
function waitFromHeaders(headers: Headers, now: number): number | undefined {
  const retryAfter = parseRetryAfter(headers.get("retry-after") ?? undefined, now);
  if (retryAfter !== undefined) return retryAfter;
  const reset = headers.get("x-ratelimit-reset");
  if (reset !== null && /^\d{1,12}$/.test(reset.trim())) return Math.max(0, Number(reset) * 1000 - now);
  return undefined;
}

async function readCapped(response: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > limit) throw new SourceRunError(`the answer is larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

export interface ProviderRequest {
  method?: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes?: number;
}

/**
 * Sends one request. Resolves with any non-rate-limited answer (the caller judges
 * the status); rejects with a SourceRunError on a timeout, a network error, a
 * redirect or a rate limit (with retryAt). A 2xx that spends the last of the limit
 * pauses the budget until the reset.
 */
export async function providerRequest(url: URL, request: ProviderRequest, budget: RequestBudget): Promise<ProviderResponse> {
  if (Date.now() < budget.pausedUntil) throw new SourceRunError("rate limit spent; waiting for the reset", budget.pausedUntil);
  const what = `${request.method ?? "GET"} ${url.pathname}`;
  let response: Response;
  let body: Buffer;
  try {
    response = await fetch(url, {
      method: request.method ?? "GET",
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
      redirect: "manual",
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    body = await readCapped(response, request.maxBytes ?? MAX_PROVIDER_BODY_BYTES);
  } catch (error) {
    if (error instanceof SourceRunError) throw error;
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") throw new SourceRunError(`${what}: no answer within ${request.timeoutMs} ms`);
    throw new SourceRunError(`${what}: ${(error as Error).message}`);
  }
  const until = rateLimitedUntil(response.status, response.headers);
  if (until !== undefined) {
    budget.pausedUntil = until;
    throw new SourceRunError(`${what}: rate limited (${response.status}) until ${new Date(until).toISOString()}`, until);
  }
  if (response.status >= 300 && response.status < 400)
    throw new SourceRunError(`${what}: answered ${response.status}; redirects are not followed`);
  if (response.headers.get("x-ratelimit-remaining") === "0") {
    budget.pausedUntil =
      Date.now() + Math.min(waitFromHeaders(response.headers, Date.now()) ?? DEFAULT_RATE_LIMIT_WAIT_MS, MAX_RATE_LIMIT_WAIT_MS);
  }
  return { status: response.status, headers: response.headers, body };
}

/** The JSON of a 2xx answer; anything else fails the run with the status. */
export function expectJson(response: ProviderResponse, what: string): unknown {
  if (response.status < 200 || response.status >= 300) {
    throw new SourceRunError(`${what}: answered ${response.status}`);
  }
  try {
    return JSON.parse(response.body.toString("utf8"));
  } catch {
    throw new SourceRunError(`${what}: the answer is not JSON`);
  }
}
