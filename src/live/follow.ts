/*
 * Following a stream: the one loop behind every live reader (long-poll, SSE, WebSocket,
 * smee). From a position it yields pages as they are committed, marks the moment it is
 * caught up, says when it sat idle for a while (so a transport can send a keep-alive),
 * and ends with what ended it. Transports only format what it yields.
 *
 * Reads are shared between followers at the same position (SharedReads), a follower
 * at the tail waits without a store query (StreamWaiters remembers tails), and is
 * handed what the commit wrote instead of reading it back (RecentTails).
 *
 * Two modes: from after a seq (deltas only), or from a snapshot position (a stream with
 * key frames): the snapshot's pages first, then the deltas after its X, with no gap and
 * no repeat, since X is the seq the snapshot is exact as of.
 */
import { earliestReadable } from "../core/compaction.js";
import { TailhookError } from "../core/errors.js";
import type { SnapshotPosition } from "../core/state/snapshot.js";
import type { StoredMessage, StreamInfo } from "../core/types.js";
import type { Store } from "../storage/store.js";
import { SharedReads } from "./shared-reads.js";
import { readSnapshotPage } from "./snapshot-pages.js";
import type { StreamWaiters } from "./stream-waiters.js";

export type FollowItem =
  /**
   * One page of a snapshot (JSON messages, framed by snapshot-start and snapshot-end);
   * nextOffset is the cursor to resume the snapshot with, or X once done.
   */
  | { kind: "snapshot"; stream: StreamInfo; messages: Buffer[]; nextOffset: string; done: boolean; asOfSeq: number }
  /** Messages after the previous position; lastSeq is where to resume. */
  | { kind: "page"; stream: StreamInfo; messages: StoredMessage[]; lastSeq: number; upToDate: boolean }
  /** Caught up at seq; once per catch-up, before the first wait. */
  | { kind: "up-to-date"; stream: StreamInfo; seq: number }
  /** Waited idleMs at the tail and nothing came; following goes on. */
  | { kind: "idle" }
  // Terminal items: following ends after them.
  /** The position is behind retention or the key-frame horizon; snapshot: the stream has key frames to re-sync from. */
  | { kind: "gone"; earliestSeq: number; snapshot: boolean }
  /** The stream is closed and was read to its end, seq. */
  | { kind: "closed"; stream: StreamInfo; seq: number }
  /** The stream was deleted; soft: forks still read its data. */
  | { kind: "deleted"; soft: boolean }
  | { kind: "shutdown" };

/**
 * Where following starts: after a seq (view: reading the compacted log behind H, the
 * horizon it is read at, core/compaction.ts ReadView), or at a snapshot position (see
 * live/snapshot-pages.ts).
 */
export type FollowStart =
  | { afterSeq: number; view?: number | undefined; snapshot?: undefined }
  | { snapshot: SnapshotPosition; afterSeq?: undefined; view?: undefined };

export type FollowOptions = FollowStart & {
  /** How long to wait at the tail before yielding "idle"; asked before each wait. */
  idleMs: () => number;
  /** Following stops, with no item, once this aborts (the client went away). */
  signal: AbortSignal;
};

export class LiveStreams {
  private readonly reads: SharedReads;

  constructor(
    private readonly store: Store,
    readonly waiters: StreamWaiters,
    /** Keys a snapshot page looks at, at most (tests make it small; PAGE_LIMITS otherwise). */
    private readonly snapshotPageKeys?: number,
  ) {
    this.reads = new SharedReads(store, waiters.recent);
  }

  async *follow(streamId: number, options: FollowOptions): AsyncGenerator<FollowItem, void, undefined> {
    const { signal } = options;
    // Tracked before the first read, so no commit after that read can go unnoticed.
    const release = this.waiters.track(streamId);
    try {
      let afterSeq: number;
      if (options.snapshot !== undefined) {
        const end = yield* this.snapshotPages(streamId, options.snapshot, signal);
        if (end === undefined) return;
        if (typeof end !== "number") return yield end;
        afterSeq = end;
      } else {
        afterSeq = options.afterSeq;
      }
      let marked = false;
      while (!signal.aborted) {
        if (this.waiters.stopped.aborted) return yield { kind: "shutdown" };
        const read = await this.reads.read(streamId, afterSeq, undefined, options.view);
        if (signal.aborted) return;
        if (read.kind !== "page") return yield read;
        const { stream } = read;
        if (read.messages.length > 0) {
          yield read;
          if (signal.aborted) return;
          afterSeq = read.lastSeq;
          marked = false;
        } else if (read.lastSeq > afterSeq) {
          // Nothing left behind H in the compacted log: on at H.
          afterSeq = read.lastSeq;
        }
        if (stream.closed && afterSeq >= stream.tailSeq) return yield { kind: "closed", stream, seq: afterSeq };
        if (!read.upToDate) continue;
        if (!marked) {
          yield { kind: "up-to-date", stream, seq: afterSeq };
          marked = true;
        }
        // Idle time passes with no re-read: only a commit past afterSeq means there is more.
        let outcome = await this.waiters.wait(streamId, afterSeq, options.idleMs(), signal);
        while (outcome === "timeout") {
          yield { kind: "idle" };
          outcome = await this.waiters.wait(streamId, afterSeq, options.idleMs(), signal);
        }
        if (outcome === "aborted") return;
        if (outcome === "shutdown") return yield { kind: "shutdown" };
      }
    } finally {
      release();
    }
  }

  /** Yields the snapshot's pages; returns X, a terminal item, or undefined once aborted. */
  private async *snapshotPages(
    streamId: number,
    start: SnapshotPosition,
    signal: AbortSignal,
  ): AsyncGenerator<FollowItem, number | FollowItem | undefined, undefined> {
    for (let position = start; ;) {
      if (this.waiters.stopped.aborted) return { kind: "shutdown" };
      const stream = await this.store.getStreamById(streamId);
      if (signal.aborted) return undefined;
      if (!stream || stream.softDeleted) return { kind: "deleted", soft: stream !== undefined };
      let page;
      try {
        page = await readSnapshotPage(this.store, stream, position, this.snapshotPageKeys);
      } catch (error) {
        // Compaction overtook the snapshot under way: the reader starts again at offset=snapshot.
        if (error instanceof TailhookError && error.code === "gone") {
          return { kind: "gone", earliestSeq: earliestReadable(stream), snapshot: true };
        }
        throw error;
      }
      if (signal.aborted) return undefined;
      const { messages, nextOffset, done, asOfSeq } = page;
      yield { kind: "snapshot", stream, messages, nextOffset, done, asOfSeq };
      if (signal.aborted) return undefined;
      if (page.next === null) return asOfSeq;
      position = page.next;
    }
  }
}
