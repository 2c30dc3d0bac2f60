/*
 * An event as smee.io would have sent it: the request's headers as Node's
 * `req.headers` (lower-case names, duplicates joined), plus `body`, `query` and
 * `timestamp`. smee-client turns every other key into a header of the request it
 * forwards, so headers that would break that request are left out here.
 */
import type { EventEnvelope } from "./types.js";

export type SmeeHeaderValue = string | string[];

export interface SmeePayload {
  [header: string]: unknown;
  body: unknown;
  query: Record<string, string | string[]>;
  timestamp: number;
}

/**
 * Left out: connection-level headers that undici (smee-client's fetch) refuses,
 * `sec-fetch-mode` (smee-client passes it to fetch as `mode`, and "navigate" throws,
 * "no-cors" strips headers), and `content-length`, which describes the bytes we
 * received and not the re-serialized JSON a client forwards.
 */
const DROPPED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "expect",
  "te",
  "trailer",
  "proxy-connection",
  "http2-settings",
  "sec-fetch-mode",
  "content-length",
]);

/** Node keeps the first of these and drops repeats (see `IncomingMessage.headers`). */
const SINGLE_VALUED = new Set([
  "content-type",
  "content-length",
  "user-agent",
  "referer",
  "host",
  "authorization",
  "proxy-authorization",
  "if-modified-since",
  "if-unmodified-since",
  "from",
  "location",
  "max-forwards",
  "retry-after",
  "etag",
  "last-modified",
  "server",
  "age",
  "expires",
]);

/** The fields smee's format owns: a header of the same name is overwritten, as on smee.io. */
const PAYLOAD_FIELDS = new Set(["body", "query", "timestamp"]);

/** Header pairs flattened the way Node builds `req.headers`, which is what smee.io sends. */
export function flattenHeaders(pairs: ReadonlyArray<readonly [string, string]>): Record<string, SmeeHeaderValue> {
  // No prototype: a header named "__proto__" must stay a plain key.
  const headers: Record<string, SmeeHeaderValue> = Object.create(null) as Record<string, SmeeHeaderValue>;
  for (const [rawName, value] of pairs) {
    const name = rawName.toLowerCase();
    const existing = headers[name];
    if (name === "set-cookie") {
      headers[name] = Array.isArray(existing) ? [...existing, value] : [value];
    } else if (existing === undefined) {
      headers[name] = value;
    } else if (!SINGLE_VALUED.has(name)) {
      headers[name] = `${String(existing)}${name === "cookie" ? "; " : ", "}${value}`;
    }
  }
  return headers;
}

/** A query string as an object: repeated keys become arrays, as Node's querystring does. */
export function parseQuery(raw: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [key, value] of new URLSearchParams(raw)) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return query;
}

export function isJsonContentType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const mediaType = contentType.split(";")[0]!.trim().toLowerCase();
  return mediaType === "application/json" || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(mediaType);
}

/**
 * The body as smee.io would carry it: parsed JSON for a JSON content type (when it
 * parses), else the text. A binary body is its base64 text, marked by the extra
 * header `x-tailhook-body-encoding: base64`. An empty body is `{}`: smee-client
 * cannot forward a missing body, and strict JSON parsers accept only objects.
 */
function smeeBody(envelope: EventEnvelope): { body: unknown; base64: boolean } {
  if (envelope.size === 0) return { body: {}, base64: false };
  if (envelope.bodyEncoding === "base64") return { body: envelope.body, base64: true };
  if (isJsonContentType(envelope.contentType)) {
    try {
      return { body: JSON.parse(envelope.body) as unknown, base64: false };
    } catch {
      // Not JSON after all: forward the text as it came.
    }
  }
  return { body: envelope.body, base64: false };
}

export function toSmeePayload(envelope: EventEnvelope): SmeePayload {
  const headers = flattenHeaders(envelope.headers);
  const payload: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, value] of Object.entries(headers)) {
    if (!DROPPED_HEADERS.has(name) && !PAYLOAD_FIELDS.has(name)) payload[name] = value;
  }
  const { body, base64 } = smeeBody(envelope);
  if (base64) payload["x-tailhook-body-encoding"] = "base64";
  return {
    ...payload,
    body,
    query: parseQuery(envelope.query),
    timestamp: Date.parse(envelope.receivedAt),
  };
}
