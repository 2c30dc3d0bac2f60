/*
 * Reading a stream page by page from a position, for one-shot reads and followers
 * alike. A page is bounded in messages and bytes, so no read holds a whole stream in
 * memory, and every page is checked for continuity: if retention removed what the
 * reader asked for, the answer is "gone" instead of a silent skip ahead.
 */
import { behindHorizon, earliestReadable, hasKeyFrames, holeAllowed, type ReadView } from "../core/compaction.js";
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

/** What was asked for is behind retention or the key-frame horizon; the earliest position that can still be read. */
export interface Gone {
  kind: "gone";
  earliestSeq: number;
  /** The stream has key frames: its snapshot gives the state back. */
  snapshot: boolean;
}

function goneFrom(stream: StreamInfo): Gone {
  return { kind: "gone", earliestSeq: earliestReadable(stream), snapshot: hasKeyFrames(stream) };
}

function lostFor(stream: StreamInfo, afterSeq: number, view: ReadView): Gone | undefined {
  return stream.firstSeq - 1 > afterSeq || behindHorizon(stream, afterSeq, view) ? goneFrom(stream) : undefined;
}

/** Whether the page holds every message after afterSeq, but for the holes compaction left behind H in the reader's view. */
function continuous(stream: StreamInfo, messages: StoredMessage[], afterSeq: number, view: ReadView): boolean {
  let expected = afterSeq + 1;
  for (const { seq } of messages) {
    if (seq !== expected && !(seq > expected && holeAllowed(stream, seq, view))) return false;
    expected = seq + 1;
  }
  return true;
}

/**
 * One page after `afterSeq` of `stream` as the caller last saw it. The store reads it
 * as one consistent snapshot; the whole page is checked anyway (every seq the
 * previous + 1, the first afterSeq + 1), and a page with a hole is "gone", with the
 * earliest position as it is now. At the caller's tail nothing is read.
 *
 * `view`: the horizon of the compacted log the reader reads (core/compaction.ts), if
 * it reads behind H. Its pages may skip what compaction removed; once a page ends
 * with nothing left to read behind H, the position moves to H itself.
 */
export async function readPage(
  store: Store,
  stream: StreamInfo,
  afterSeq: number,
  limits = PAGE_LIMITS,
  view: ReadView = undefined,
): Promise<Page | Gone> {
  const lost = lostFor(stream, afterSeq, view);
  if (lost) return lost;
  if (stream.tailSeq <= afterSeq) return { kind: "page", messages: [], lastSeq: afterSeq, upToDate: true };
  const messages = await store.readMessages(stream.id, afterSeq, limits);
  const broken = !continuous(stream, messages, afterSeq, view);
  if (broken || messages.length === 0) {
    // A hole, or nothing where the tail said there was more: pruned or compacted (gone) or removed meanwhile.
    const current = (await store.getStreamById(stream.id)) ?? stream;
    if (broken) return lostFor(current, afterSeq, view) ?? goneFrom(current);
    const gone = lostFor(current, afterSeq, view);
    if (gone) return gone;
    // Everything after afterSeq up to H was compacted away: the reader of the compacted log is at H.
    const lastSeq = afterSeq < current.horizonSeq ? current.horizonSeq : afterSeq;
    return { kind: "page", messages, lastSeq, upToDate: lastSeq >= current.tailSeq };
  }
  let lastSeq = messages.at(-1)!.seq;
  // Only a reader of the compacted log pays for the page-size check.
  if (lastSeq < stream.horizonSeq && view === stream.horizonSeq && !pageFull(messages, limits)) lastSeq = stream.horizonSeq;
  return { kind: "page", messages, lastSeq, upToDate: lastSeq >= stream.tailSeq };
}

/** Whether the store stopped at a page limit (so more may follow behind H) rather than at the end of what there is. */
function pageFull(messages: StoredMessage[], limits: ReadLimits): boolean {
  if (messages.length >= limits.maxMessages) return true;
  return messages.reduce((sum, message) => sum + message.data.length, 0) >= limits.maxBytes;
}
