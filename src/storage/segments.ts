/*
 * Where a stream's messages live. A fork reads its source's messages up to the fork
 * point (recursively, for forks of forks) and its own after that, with no copying: a
 * stream's segments say which stream holds each range of seqs. Fork points never
 * change once a stream exists, so segments are cached for good (least recently used
 * first out when full: any entry can be computed again from the streams rows).
 */
import { LRUCache } from "lru-cache";
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
  private readonly cache = new LRUCache<number, Segment[]>({ max: CACHE_SIZE });

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
export type SyncSegmentReader = (owner: number, afterSeq: number, toSeq: number, limits: ReadLimits) => StoredMessage[];

interface SegmentRead {
  owner: number;
  from: number;
  toSeq: number;
  limits: ReadLimits;
}

/** The walk over the segments a read covers: which range to read next, and what was read so far. */
class SegmentWalk {
  readonly messages: StoredMessage[] = [];
  private bytes = 0;
  private from: number;
  private index = 0;
  private full = false;

  constructor(
    private readonly segments: Segment[],
    afterSeq: number,
    private readonly limits: ReadLimits,
  ) {
    this.from = afterSeq;
  }

  next(): SegmentRead | undefined {
    if (this.full) return undefined;
    while (this.index < this.segments.length && this.segments[this.index]!.toSeq <= this.from) this.index++;
    const segment = this.segments[this.index];
    if (!segment) return undefined;
    const limits = { maxMessages: this.limits.maxMessages - this.messages.length, maxBytes: this.limits.maxBytes - this.bytes };
    return { owner: segment.owner, from: this.from, toSeq: segment.toSeq, limits };
  }

  take(read: SegmentRead, rows: StoredMessage[]): void {
    for (const row of rows) {
      this.messages.push(row);
      this.bytes += row.data.length;
    }
    this.full = this.messages.length >= this.limits.maxMessages || this.bytes >= this.limits.maxBytes;
    this.from = read.toSeq;
  }
}

/** Messages after `afterSeq` across the segments, oldest first, within the limits. */
export async function readSegments(
  segments: Segment[],
  afterSeq: number,
  limits: ReadLimits,
  read: SegmentReader,
): Promise<StoredMessage[]> {
  const walk = new SegmentWalk(segments, afterSeq, limits);
  for (let next = walk.next(); next; next = walk.next()) walk.take(next, await read(next.owner, next.from, next.toSeq, next.limits));
  return walk.messages;
}

/** readSegments for synchronous reads, so that a store can run them all inside one read transaction. */
export function readSegmentsSync(segments: Segment[], afterSeq: number, limits: ReadLimits, read: SyncSegmentReader): StoredMessage[] {
  const walk = new SegmentWalk(segments, afterSeq, limits);
  for (let next = walk.next(); next; next = walk.next()) walk.take(next, read(next.owner, next.from, next.toSeq, next.limits));
  return walk.messages;
}

/** Whether a read covers more than one segment (so more than one query). */
export function spansSegments(segments: Segment[], afterSeq: number): boolean {
  return segments.filter((segment) => segment.toSeq > afterSeq).length > 1;
}
