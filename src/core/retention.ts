/*
 * What a prune pass removes: the heads of streams past their inbox's retention and
 * the whole of deleted streams, at most a budget of rows per pass, then expired
 * delivery ids with what budget is left. Both stores execute this one plan: SQLite in
 * its writer thread, PostgreSQL under an advisory lock. Pure: the stores answer the
 * two questions it needs (the first young seq, how many rows a drop removed).
 */
import type { InboxSettings, RetentionSettings } from "./types.js";

/** A live inbox's stream with retention settings, as its streams row says. */
export interface RetainedStream {
  streamId: number;
  firstSeq: number;
  tailSeq: number;
  retention: RetentionSettings;
}

/** A stream whose head is to go: seqs in [firstSeq, keepFrom) are removed. */
export interface HeadTarget {
  streamId: number;
  firstSeq: number;
  keepFrom: number;
}

/** One step for a store: delete seqs in [fromSeq, stopSeq) of a stream, then set its first seq to stopSeq. */
export interface HeadDrop {
  streamId: number;
  fromSeq: number;
  stopSeq: number;
}

/** The retention settings stored in an inbox's settings JSON (none: keep everything). */
export function retentionOf(settingsJson: string): RetentionSettings {
  return (JSON.parse(settingsJson) as InboxSettings).retention ?? {};
}

/** Messages created before this are past a maxAge retention; undefined when age does not count. */
export function ageCutoff(retention: RetentionSettings, now: number): number | undefined {
  return retention.maxAgeSeconds === undefined ? undefined : now - retention.maxAgeSeconds * 1000;
}

/**
 * Where a retained stream's kept messages start. `firstYoungSeq` is the lowest seq
 * created at or after `ageCutoff` (null when every message is older); it is only
 * asked for when the retention has a maximum age.
 */
export function retainedTarget(stream: RetainedStream, firstYoungSeq: number | null | undefined): HeadTarget {
  const { retention } = stream;
  let keepFrom = stream.firstSeq;
  if (retention.maxEvents !== undefined) keepFrom = Math.max(keepFrom, stream.tailSeq - retention.maxEvents + 1);
  if (retention.maxAgeSeconds !== undefined) keepFrom = Math.max(keepFrom, firstYoungSeq ?? stream.tailSeq + 1);
  return { streamId: stream.streamId, firstSeq: stream.firstSeq, keepFrom };
}

/** A deleted stream loses everything it still holds. */
export function deletedTarget(stream: { id: number; firstSeq: number; tailSeq: number }): HeadTarget {
  return { streamId: stream.id, firstSeq: stream.firstSeq, keepFrom: stream.tailSeq + 1 };
}

/**
 * The drops of one pass, in target order. Each drop is at most the budget left; the
 * store answers each with the rows it actually removed (fewer than the seq range when
 * the stream never held some of them, e.g. a fork's inherited seqs), which is what
 * the budget is charged. Targets are pulled lazily, so a store may compute them on
 * demand; none is pulled once the budget is spent. Returns the budget left.
 */
export function* planHeadDrops(targets: Iterable<HeadTarget>, budget: number): Generator<HeadDrop, number, number> {
  let left = budget;
  if (left <= 0) return left;
  for (const target of targets) {
    const stopSeq = Math.min(target.keepFrom, target.firstSeq + left);
    if (stopSeq > target.firstSeq) left -= yield { streamId: target.streamId, fromSeq: target.firstSeq, stopSeq };
    if (left <= 0) break;
  }
  return left;
}
