/*
 * Reading a stream page by page from a position, for one-shot reads and followers
 * alike. A page is bounded in messages and bytes, so no read holds a whole stream in
 * memory, and every page is checked for continuity: if retention removed what the
 * reader asked for, the answer is "gone" instead of a silent skip ahead.
 */
import { findGap } from "../core/continuity.js";
import type { StoredMessage, StreamInfo } from "../core/types.js";
import type { ReadLimits, Store } from "../storage/store.js";

export const PAGE_LIMITS: ReadLimits = { maxMessages: 1000, maxBytes: 1024 * 1024 };

export interface Page {
  kind: "page";
  messages: StoredMessage[];
  /** seq of the last message returned, or the start position when none. */
  lastSeq: number;
  upToDate: boolean;
}

/** What was asked for is behind retention; the earliest position that can still be read. */
export interface Gone {
  kind: "gone";
  earliestSeq: number;
}

/**
 * One page after `afterSeq` of `stream` as the caller last saw it. The store reads it
 * as one consistent snapshot; the whole page is checked anyway (every seq the
 * previous + 1, the first afterSeq + 1), and a page with a hole is "gone", with the
 * earliest position as it is now. At the caller's tail nothing is read.
 */
export async function readPage(store: Store, stream: StreamInfo, afterSeq: number, limits = PAGE_LIMITS): Promise<Page | Gone> {
  if (stream.firstSeq - 1 > afterSeq) return { kind: "gone", earliestSeq: stream.firstSeq - 1 };
  if (stream.tailSeq <= afterSeq) return { kind: "page", messages: [], lastSeq: afterSeq, upToDate: true };
  const messages = await store.readMessages(stream.id, afterSeq, limits);
  const broken =
    findGap(
      messages.map((message) => message.seq),
      afterSeq,
    ) !== undefined;
  if (broken || messages.length === 0) {
    // A hole, or nothing where the tail said there was more: pruned (gone) or removed meanwhile.
    const current = (await store.getStreamById(stream.id)) ?? stream;
    if (broken || current.firstSeq - 1 > afterSeq) return { kind: "gone", earliestSeq: current.firstSeq - 1 };
    return { kind: "page", messages, lastSeq: afterSeq, upToDate: true };
  }
  const lastSeq = messages.at(-1)!.seq;
  return { kind: "page", messages, lastSeq, upToDate: lastSeq >= stream.tailSeq };
}
