/*
 * Turns a stored event into the request delivered to a target: same method, the
 * event's sub-path appended to the target's path, the query, the original headers
 * (minus hop-by-hop ones and host, plus X-Tailhook-*), and the exact body bytes.
 * The target comes from the forwarder's own configuration, never from the payload.
 */
import { decodeEnvelopeBody } from "../core/capture.js";
import type { EventEnvelope } from "../core/types.js";

/** Headers that belong to one connection (RFC 9110 §7.6.1) or that we must set ourselves. */
const DROPPED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
]);

export interface Delivery {
  url: URL;
  method: string;
  /** Raw header list (name, value, name, value…), order and duplicates kept. */
  headers: string[];
  body: Buffer;
}

export function targetUrl(target: URL, event: Pick<EventEnvelope, "path" | "query">): URL {
  const url = new URL(target.href);
  if (event.path) url.pathname = url.pathname.replace(/\/$/, "") + event.path;
  if (event.query) url.search = url.search ? `${url.search}&${event.query}` : `?${event.query}`;
  return url;
}

export function buildDelivery(event: EventEnvelope, target: URL, inboxId: string, attempt: number): Delivery {
  const url = targetUrl(target, event);
  const connectionTokens = new Set(
    event.headers
      .filter(([name]) => name.toLowerCase() === "connection")
      .flatMap(([, value]) => value.split(",").map((token) => token.trim().toLowerCase())),
  );
  const headers: string[] = ["Host", url.host];
  for (const [name, value] of event.headers) {
    const lower = name.toLowerCase();
    if (DROPPED_HEADERS.has(lower) || connectionTokens.has(lower) || lower.startsWith("x-tailhook-")) continue;
    headers.push(name, value);
  }
  const body = decodeEnvelopeBody(event);
  headers.push(
    "X-Tailhook-Inbox",
    inboxId,
    "X-Tailhook-Seq",
    String(event.seq),
    "X-Tailhook-Attempt",
    String(attempt),
    "X-Tailhook-Event-Id",
    event.id,
  );
  if (body.length > 0 || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(event.method)) {
    headers.push("Content-Length", String(body.length));
  }
  return { url, method: event.method, headers, body };
}
