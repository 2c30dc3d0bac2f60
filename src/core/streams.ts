/*
 * The write side of general (Durable Streams protocol) streams: the requests and the
 * outcomes a store answers, with the small pure rules both stores and http share.
 * Each operation is validated and applied in one transaction, so checks such as
 * "closed?", "same producer epoch?" or "same config?" cannot race with another write.
 * Outcomes the protocol names (conflicts, duplicates, fencing) are values, not errors.
 */
import { LRUCache } from "lru-cache";
import type { StateProtocol } from "./state/state-messages.js";
import type { StreamInfo } from "./types.js";

export interface ProducerClaim {
  id: string;
  epoch: number;
  seq: number;
}

export interface ForkRequest {
  /** Name of the source stream. */
  source: string;
  /** The source offset as given ("after seq n"), or null for the source's tail. */
  offsetSeq: number | null;
  /** Flattened JSON messages, or bytes, inherited past the offset. */
  subOffset: number;
}

export interface CreateStreamRequest {
  name: string;
  /** Null when the request named none: a fork inherits, a plain stream gets the default. */
  contentType: string | null;
  ttlSeconds: number | null;
  expiresAt: number | null;
  closed: boolean;
  /** Initial messages (one per flattened JSON value, or one for a byte body). */
  messages: Buffer[];
  fork: ForkRequest | null;
  /** `Stream-State`: every message must be a State Protocol message (docs/key-frames.md). */
  stateProtocol: StateProtocol | null;
}

export type CreateStreamResult =
  | { status: "created"; stream: StreamInfo }
  | { status: "exists"; stream: StreamInfo }
  | { status: "conflict"; reason: string }
  | { status: "source_not_found" }
  | { status: "bad_fork"; reason: string }
  /** A state stream's initial message `index` (from 0) is no State Protocol message. */
  | { status: "invalid_state_message"; index: number; reason: string };

export interface AppendRequest {
  name: string;
  /** The request's content type; null when it sent none (allowed for close-only). */
  contentType: string | null;
  messages: Buffer[];
  close: boolean;
  streamSeq: string | null;
  producer: ProducerClaim | null;
}

export type AppendResult =
  /** New data (or a first close) committed. */
  | { status: "appended"; stream: StreamInfo; producerSeq: number | null }
  /** A producer's retry of something already committed, or a repeated close: nothing written. */
  | { status: "duplicate"; stream: StreamInfo; producerSeq: number | null }
  | { status: "closed"; stream: StreamInfo }
  | { status: "content_type_mismatch"; stream: StreamInfo }
  | { status: "stream_seq_regression"; stream: StreamInfo }
  | { status: "stale_epoch"; epoch: number }
  | { status: "new_epoch_needs_seq_zero" }
  | { status: "producer_seq_gap"; expected: number; received: number }
  | { status: "not_found" }
  | { status: "gone" }
  /** Message `index` (from 0) is no State Protocol message: nothing was written. */
  | { status: "invalid_state_message"; index: number; reason: string };

export type DeleteStreamResult = { status: "deleted" } | { status: "not_found" } | { status: "gone" };

/** Media types compare case-insensitively and without parameters. */
export function mediaType(contentType: string): string {
  return contentType.split(";")[0]!.trim().toLowerCase();
}

/** Whether a stream is past its TTL or expiry at `now`, given the latest known touch. */
export function isExpired(stream: StreamInfo, now: number, lastTouch = stream.touchedAt ?? stream.createdAt): boolean {
  if (stream.expiresAt !== null && now >= stream.expiresAt) return true;
  return stream.ttlSeconds !== null && now >= lastTouch + stream.ttlSeconds * 1000;
}

/**
 * Reads restart a sliding TTL, but recording every read would turn each read into a
 * committed write (and let anyone force writes with reads). A stream's reads are
 * recorded at most once per 5% of its TTL, so it may expire up to that much earlier
 * than its last read says; a stream without a TTL is never recorded. A stream it has
 * forgotten (least recently used first) falls back to its row's touchedAt: at worst one
 * extra touch is written.
 */
export class TouchThrottle {
  private readonly recorded: LRUCache<number, number>;

  constructor(size = 10_000) {
    this.recorded = new LRUCache({ max: size });
  }

  due(stream: StreamInfo, now: number): boolean {
    if (stream.ttlSeconds === null) return false;
    const last = this.recorded.get(stream.id) ?? stream.touchedAt ?? 0;
    if (now - last < stream.ttlSeconds * 50) return false;
    this.recorded.set(stream.id, now);
    return true;
  }
}
