/*
 * Where a stream's messages live. A fork reads its source's messages up to the fork
 * point (recursively, for forks of forks) and its own after that, with no copying: a
 * stream's segments say which stream holds each range of seqs. Fork points never
 * change once a stream exists, so segments are cached for good.
 */
import type { StoredMessage } from "../core/types.js";
import type { ReadLimits } from "./store.js";

export interface ForkPoint {
  forkedFrom: number | null;
  forkSeq: number | null;
}

/** Seqs after the previous segment's toSeq, up to this toSeq, are held by `owner`. */
export interface Segment {
  owner: number;
  toSeq: number;
}

const CACHE_SIZE = 10_000;

export class SegmentCache {
  private readonly cache = new Map<number, Segment[]>();

  constructor(private readonly forkPointOf: (streamId: number) => Promise<ForkPoint | undefined>) {}

  async get(streamId: number): Promise<Segment[]> {
    const cached = this.cache.get(streamId);
    if (cached) return cached;
    const point = await this.forkPointOf(streamId);
    const own: Segment = { owner: streamId, toSeq: Number.MAX_SAFE_INTEGER };
    let segments = [own];
    if (point && point.forkedFrom !== null && point.forkSeq !== null) {
      const forkSeq = point.forkSeq;
      const inherited = (await this.get(point.forkedFrom))
        .map((segment) => ({ owner: segment.owner, toSeq: Math.min(segment.toSeq, forkSeq) }))
        .filter((segment, index, all) => index === 0 || segment.toSeq > all[index - 1]!.toSeq);
      segments = [...inherited, own];
    }
    if (this.cache.size >= CACHE_SIZE) this.cache.clear();
    this.cache.set(streamId, segments);
    return segments;
  }

  /** The stream that holds a seq. */
  async ownerOf(streamId: number, seq: number): Promise<number> {
    return (await this.get(streamId)).find((segment) => seq <= segment.toSeq)!.owner;
  }
}

/** Reads one stream's own rows with afterSeq < seq <= toSeq, within the limits. */
export type SegmentReader = (owner: number, afterSeq: number, toSeq: number, limits: ReadLimits) => Promise<StoredMessage[]>;

/** Messages after `afterSeq` across the segments, oldest first, within the limits. */
export async function readSegments(segments: Segment[], afterSeq: number, limits: ReadLimits, read: SegmentReader): Promise<StoredMessage[]> {
  const messages: StoredMessage[] = [];
  let bytes = 0;
  let from = afterSeq;
  for (const segment of segments) {
    if (segment.toSeq <= from) continue;
    const rows = await read(segment.owner, from, segment.toSeq, { maxMessages: limits.maxMessages - messages.length, maxBytes: limits.maxBytes - bytes });
    for (const row of rows) {
      messages.push(row);
      bytes += row.data.length;
    }
    if (messages.length >= limits.maxMessages || bytes >= limits.maxBytes) return messages;
    from = segment.toSeq;
  }
  return messages;
}
