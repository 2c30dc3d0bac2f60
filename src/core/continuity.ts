/*
 * The gapless-stream check every reader applies to a page: the first message must be
 * the one right after the read position, and each next one the previous + 1. A page
 * that fails it lost events (retention removed them mid-read) and must be answered
 * as "gone", never delivered as if nothing were missing.
 */

export interface Gap {
  /** The seq that should have come next. */
  expected: number;
  /** The seq that came instead: the first one after the hole. */
  found: number;
}

/**
 * Where a page breaks, or undefined when it is contiguous. `afterSeq` undefined: the
 * start is not known (a read from "-1"), so only the inside of the page is checked.
 */
export function findGap(seqs: Iterable<number>, afterSeq: number | undefined): Gap | undefined {
  let expected = afterSeq === undefined ? undefined : afterSeq + 1;
  for (const seq of seqs) {
    if (expected !== undefined && seq !== expected) return { expected, found: seq };
    expected = seq + 1;
  }
  return undefined;
}
