/*
 * Consumers as readers see them: names are short and URL-safe, and lag is derived
 * from the stream, never stored.
 */
import { TailhookError } from "./errors.js";
import { formatOffset } from "./offsets.js";
import type { Consumer, StreamInfo } from "./types.js";

const NAME_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;

export function parseConsumerName(value: unknown): string {
  if (typeof value !== "string" || !NAME_PATTERN.test(value)) {
    throw new TailhookError("bad_request", "a consumer name is 1 to 100 letters, digits, '.', '_' or '-'");
  }
  return value;
}

export interface ConsumerView {
  name: string;
  committedOffset: string;
  committedSeq: number;
  lag: {
    /** Events after the committed offset that are still retained. */
    events: number;
    /** Events the consumer never committed that retention removed. */
    lostEvents: number;
    /** How far behind the consumer is in time: the age of its oldest unacked event, 0 when caught up. */
    seconds: number;
    oldestUnackedAt: string | null;
    oldestUnackedAgeSeconds: number | null;
    /**
     * Its committed offset lies before `horizonOffset`: a delta read from there answers
     * 410, and it re-syncs from the key frame (or the earliest event), see docs/recovery.md.
     */
    behindHorizon: boolean;
    /** The earliest offset deltas can be read after: the later of the key-frame horizon and the retention boundary. */
    horizonOffset: string;
  };
  createdAt: string;
  lastAckAt: string | null;
  lastSeenAt: string | null;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** The seq of the consumer's oldest unacked event that is still retained (it may not exist yet). */
export function firstUnackedSeq(consumer: Consumer, stream: StreamInfo): number {
  return Math.max(consumer.committedSeq, stream.firstSeq - 1) + 1;
}

/** The earliest position a delta read can start from: compaction's horizon H or retention's boundary, whichever is later. */
export function readHorizonSeq(stream: StreamInfo): number {
  return Math.max(stream.horizonSeq, stream.firstSeq - 1);
}

/** `oldestUnackedAt` is the receive time of the first retained event after the committed one. */
export function viewConsumer(consumer: Consumer, stream: StreamInfo, oldestUnackedAt: number | null, now: number): ConsumerView {
  const readFrom = firstUnackedSeq(consumer, stream) - 1;
  const ageSeconds = oldestUnackedAt === null ? null : Math.max(0, Math.round((now - oldestUnackedAt) / 1000));
  const horizonSeq = readHorizonSeq(stream);
  return {
    name: consumer.name,
    committedOffset: formatOffset(consumer.committedSeq),
    committedSeq: consumer.committedSeq,
    lag: {
      events: Math.max(0, stream.tailSeq - readFrom),
      lostEvents: Math.max(0, stream.firstSeq - 1 - consumer.committedSeq),
      seconds: ageSeconds ?? 0,
      oldestUnackedAt: iso(oldestUnackedAt),
      oldestUnackedAgeSeconds: ageSeconds,
      behindHorizon: consumer.committedSeq < horizonSeq,
      horizonOffset: formatOffset(horizonSeq),
    },
    createdAt: new Date(consumer.createdAt).toISOString(),
    lastAckAt: iso(consumer.lastAckAt),
    lastSeenAt: iso(consumer.lastSeenAt),
  };
}
