/*
 * Turns a stored event into the request delivered to a target: same method (a mail
 * event, method SMTP, is POSTed: its raw message with Content-Type message/rfc822), the
 * event's sub-path appended to the target's path, the query, the original headers
 * (minus hop-by-hop ones and host, plus X-Tailhook-*), and the exact body bytes;
 * with a signing key, the sender's webhook-* signature is replaced by a fresh one.
 * The target comes from the forwarder's own configuration, never from the payload.
 */
import { decodeEnvelopeBody } from "../core/capture.js";
import { EMAIL_METHOD } from "../core/email-event.js";
import type { EventEnvelope } from "../core/types.js";
import { REPLACED_HEADERS, signatureHeaders, type SigningKey } from "./resign.js";

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
  /** Where to connect (the target's origin). */
  url: URL;
  /** The raw request target: path and query. */
  path: string;
  method: string;
  /** Raw header list (name, value, name, value…), order and duplicates kept. */
  headers: string[];
  body: Buffer;
}

/**
 * The request target: the target's path with the event's sub-path appended, then the
 * target's query and the event's. The event's parts are used exactly as the sender
 * wrote them (no re-encoding, no dot-segment removal), so URL signatures still match.
 */
export function targetPath(target: URL, event: Pick<EventEnvelope, "path" | "query">): string {
  const path = event.path ? target.pathname.replace(/\/$/, "") + event.path : target.pathname;
  const queries = [target.search.slice(1), event.query].filter((part) => part !== "");
  return queries.length > 0 ? `${path}?${queries.join("&")}` : path;
}

export function buildDelivery(
  event: EventEnvelope,
  target: URL,
  inboxId: string,
  attempt: number,
  signing?: SigningKey,
  snapshot = false,
): Delivery {
  const url = new URL(target.origin);
  const path = targetPath(target, event);
  const connectionTokens = new Set(
    event.headers
      .filter(([name]) => name.toLowerCase() === "connection")
      .flatMap(([, value]) => value.split(",").map((token) => token.trim().toLowerCase())),
  );
  const headers: string[] = ["Host", url.host];
  for (const [name, value] of event.headers) {
    const lower = name.toLowerCase();
    if (DROPPED_HEADERS.has(lower) || connectionTokens.has(lower) || lower.startsWith("x-tailhook-")) continue;
    if (signing && REPLACED_HEADERS.has(lower)) continue;
    headers.push(name, value);
  }
  const body = decodeEnvelopeBody(event);
  // Signed per attempt: the timestamp is this attempt's, the id (the event's) is stable for dedupe.
  if (signing) headers.push(...signatureHeaders(signing, event.id, body));
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
  // An entity's latest event delivered again as part of a key frame (docs/recovery.md).
  if (snapshot) headers.push("X-Tailhook-Snapshot", "1");
  if (body.length > 0 || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(event.method)) {
    headers.push("Content-Length", String(body.length));
  }
  return { url, path, method: event.method === EMAIL_METHOD ? "POST" : event.method, headers, body };
}
