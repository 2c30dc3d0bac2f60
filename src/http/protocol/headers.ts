/*
 * The Durable Streams request headers, parsed strictly: a malformed value is a 400
 * with a message naming the header, never a guess.
 */
import type { IncomingHttpHeaders } from "node:http";
import { TailhookError } from "../../core/errors.js";
import { parseOffset } from "../../core/offsets.js";
import { STATE_PROTOCOL_V1, type StateProtocol } from "../../core/state/state-messages.js";
import type { ForkRequest, ProducerClaim } from "../../core/streams.js";

/** Headers a browser may send to, and read from, a stream (CORS). */
export const REQUEST_HEADERS =
  "content-type, authorization, if-none-match, stream-seq, stream-ttl, stream-expires-at, stream-closed, " +
  "stream-forked-from, stream-fork-offset, stream-fork-sub-offset, producer-id, producer-epoch, producer-seq, stream-state, " +
  "stream-compact";
export const EXPOSED_HEADERS =
  "stream-next-offset, stream-cursor, stream-up-to-date, stream-closed, stream-ttl, stream-expires-at, " +
  "stream-sse-data-encoding, etag, location, producer-epoch, producer-seq, producer-expected-seq, producer-received-seq, stream-state, " +
  "stream-compact, link";

const DECIMAL = /^(0|[1-9]\d*)$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

import { parseCompactHeader, type CompactionPolicy } from "../../core/compaction.js";

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

function bad(message: string): TailhookError {
  return new TailhookError("bad_request", message);
}

/** A non-negative integer no larger than 2^53-1, in plain decimal. */
function safeInteger(raw: string, header: string): number {
  const value = Number(raw);
  if (!DECIMAL.test(raw) || !Number.isSafeInteger(value)) throw bad(`${header} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** `Stream-Closed` counts only when it is exactly "true" (any case); other values are ignored. */
export function wantsClose(headers: IncomingHttpHeaders): boolean {
  return single(headers, "stream-closed")?.trim().toLowerCase() === "true";
}

export interface Expiry {
  ttlSeconds: number | null;
  expiresAt: number | null;
}

export function parseExpiry(headers: IncomingHttpHeaders): Expiry {
  const ttl = single(headers, "stream-ttl");
  const expires = single(headers, "stream-expires-at");
  if (ttl !== undefined && expires !== undefined) throw bad("send Stream-TTL or Stream-Expires-At, not both");
  if (ttl !== undefined) return { ttlSeconds: safeInteger(ttl.trim(), "Stream-TTL"), expiresAt: null };
  if (expires !== undefined) {
    const at = Date.parse(expires.trim());
    if (!RFC3339.test(expires.trim()) || Number.isNaN(at))
      throw bad(`Stream-Expires-At must be an RFC 3339 timestamp, got ${JSON.stringify(expires)}`);
    return { ttlSeconds: null, expiresAt: at };
  }
  return { ttlSeconds: null, expiresAt: null };
}

/** All three producer headers, or none. */
export function parseProducer(headers: IncomingHttpHeaders): ProducerClaim | null {
  const id = single(headers, "producer-id");
  const epoch = single(headers, "producer-epoch");
  const seq = single(headers, "producer-seq");
  if (id === undefined && epoch === undefined && seq === undefined) return null;
  if (id === undefined || epoch === undefined || seq === undefined) {
    throw bad("Producer-Id, Producer-Epoch and Producer-Seq must be sent together");
  }
  if (id.trim() === "") throw bad("Producer-Id must not be empty");
  return { id, epoch: safeInteger(epoch.trim(), "Producer-Epoch"), seq: safeInteger(seq.trim(), "Producer-Seq") };
}

export function parseStreamSeq(headers: IncomingHttpHeaders): string | null {
  const value = single(headers, "stream-seq");
  if (value === undefined) return null;
  if (value === "") throw bad("Stream-Seq must not be empty");
  return value;
}

/** The fork headers of a PUT; the source path is relative to the stream root. */
export function parseFork(headers: IncomingHttpHeaders, streamRoot: string): ForkRequest | null {
  const from = single(headers, "stream-forked-from");
  const offset = single(headers, "stream-fork-offset");
  const subOffset = single(headers, "stream-fork-sub-offset");
  if (from === undefined) {
    if (offset !== undefined || subOffset !== undefined) throw bad("Stream-Fork-Offset needs Stream-Forked-From");
    return null;
  }
  const source = sourcePath(from.trim(), streamRoot);
  if (source === "") throw bad("Stream-Forked-From must name a stream");
  let offsetSeq: number | null = null;
  if (offset !== undefined) {
    const parsed = parseOffset(offset.trim());
    if (!parsed) throw bad(`malformed Stream-Fork-Offset: ${offset}`);
    if (parsed.kind === "start") offsetSeq = 0;
    else if (parsed.kind === "after") offsetSeq = parsed.seq;
  }
  return { source, offsetSeq, subOffset: subOffset === undefined ? 0 : safeInteger(subOffset.trim(), "Stream-Fork-Sub-Offset") };
}

/** Accepts "/v1/stream/a/b", "a/b" or a full URL on this server; returns "a/b". */
function sourcePath(value: string, streamRoot: string): string {
  let path = value;
  if (/^https?:\/\//i.test(path)) path = new URL(path).pathname;
  path = decodeURIComponent(path);
  const root = `${streamRoot}/`;
  if (path.startsWith(root)) return path.slice(root.length);
  return path.replace(/^\/+/, "");
}

/** `Stream-State: v1` makes a state stream (docs/key-frames.md); no other version exists yet. */
export function parseStreamState(headers: IncomingHttpHeaders): StateProtocol | null {
  const value = single(headers, "stream-state");
  if (value === undefined) return null;
  if (value.trim().toLowerCase() !== STATE_PROTOCOL_V1)
    throw bad(`Stream-State must be ${STATE_PROTOCOL_V1}, got ${JSON.stringify(value)}`);
  return STATE_PROTOCOL_V1;
}

/** `Stream-Compact: key-frame[; lag=N][; tombstone-age=S|never]`: a compacted state stream (core/compaction.ts). */
export function parseStreamCompact(headers: IncomingHttpHeaders): CompactionPolicy | null {
  const value = single(headers, "stream-compact");
  return value === undefined ? null : parseCompactHeader(value.trim().toLowerCase());
}
