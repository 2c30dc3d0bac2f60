/*
 * The NOTIFY payload that tells every process sharing the database about new tails:
 * "origin|id:tail,id:tail". A process calls its own listeners right after its commit,
 * so the origin lets it skip the echo of its own NOTIFY (listeners would run twice).
 */

/** The payload for these tails, sent by the store whose origin id is `origin`. */
export function encodeCommitNotice(origin: string, tails: ReadonlyMap<number, number>): string {
  return `${origin}|${[...tails].map(([id, tail]) => `${id}:${tail}`).join(",")}`;
}

export type CommitNotice = { kind: "own" } | { kind: "tails"; tails: Map<number, number> };

/** What a received payload means to the store whose origin id is `origin`. */
export function decodeCommitNotice(origin: string, payload: string): CommitNotice {
  const bar = payload.indexOf("|");
  // A payload without an origin comes from a process of an older version: never ours.
  if (bar >= 0 && payload.slice(0, bar) === origin) return { kind: "own" };
  const tails = new Map<number, number>();
  for (const entry of payload.slice(bar + 1).split(",")) {
    const [streamId, tailSeq] = entry.split(":").map(Number);
    if (Number.isSafeInteger(streamId) && Number.isSafeInteger(tailSeq)) tails.set(streamId!, tailSeq!);
  }
  return { kind: "tails", tails };
}
