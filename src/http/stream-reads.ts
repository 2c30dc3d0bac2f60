/*
 * Reading a stream page by page from an offset, shared by catch-up, long-poll and SSE.
 * A page is bounded in messages and bytes, so no read holds a whole stream in memory,
 * and every page is checked for continuity: if retention removed what the reader
 * asked for, it is told "gone" instead of silently skipping ahead.
 */
import { findGap } from "../core/continuity.js";
import { TailhookError } from "../core/errors.js";
import { formatOffset, parseOffset } from "../core/offsets.js";
import type { StoredMessage, StreamInfo } from "../core/types.js";
import type { ReadLimits, Store } from "../storage/store.js";

export const PAGE_LIMITS: ReadLimits = { maxMessages: 1000, maxBytes: 1024 * 1024 };

export interface Page {
  messages: StoredMessage[];
  /** seq of the last message returned, or the start position when none. */
  lastSeq: number;
  upToDate: boolean;
}

export function goneError(stream: StreamInfo): TailhookError {
  return new TailhookError("gone", "the offset is before the earliest retained event; events were lost to retention", {
    earliestOffset: formatOffset(stream.firstSeq - 1),
  });
}

/** Turns a client's offset into the seq after which to read. */
export function resolveStart(stream: StreamInfo, rawOffset: string | undefined): number {
  const offset = parseOffset(rawOffset);
  if (!offset) throw new TailhookError("bad_request", `malformed offset: ${rawOffset}`);
  if (offset.kind === "start") return stream.firstSeq - 1;
  if (offset.kind === "now") return stream.tailSeq;
  if (offset.seq > stream.tailSeq) throw new TailhookError("bad_request", "offset is beyond the end of the stream");
  if (offset.seq < stream.firstSeq - 1) throw goneError(stream);
  return offset.seq;
}

/**
 * One page after `afterSeq`. The store reads it as one consistent snapshot; the whole
 * page is checked anyway (every seq the previous + 1, the first afterSeq + 1), and a
 * page with a hole is "gone", with the earliest offset as it is now.
 */
export async function readPage(store: Store, stream: StreamInfo, afterSeq: number, limits = PAGE_LIMITS): Promise<Page> {
  const messages = await store.readMessages(stream.id, afterSeq, limits);
  if (findGap(messages.map((message) => message.seq), afterSeq)) {
    throw goneError((await store.getStreamById(stream.id)) ?? stream);
  }
  const lastSeq = messages.at(-1)?.seq ?? afterSeq;
  if (messages.length === 0) {
    // Nothing after afterSeq: either we are at the tail, or it was all pruned.
    const current = await store.getStreamById(stream.id);
    if (current && current.firstSeq - 1 > afterSeq) throw goneError(current);
    return { messages, lastSeq, upToDate: true };
  }
  return { messages, lastSeq, upToDate: lastSeq >= stream.tailSeq };
}
