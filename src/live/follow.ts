/*
 * Following a stream: the one loop behind every live reader (long-poll, SSE, WebSocket,
 * smee). From a position it yields pages as they are committed, marks the moment it is
 * caught up, says when it sat idle for a while (so a transport can send a keep-alive),
 * and ends with what ended it. Transports only format what it yields.
 *
 * Reads are shared between followers at the same position (SharedReads), and a
 * follower at the tail waits without a store query (StreamWaiters remembers tails).
 */
import type { StoredMessage, StreamInfo } from "../core/types.js";
import type { Store } from "../storage/store.js";
import { SharedReads } from "./shared-reads.js";
import type { StreamWaiters } from "./stream-waiters.js";

export type FollowItem =
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

export interface FollowOptions {
  /** Follow from after this seq. */
  afterSeq: number;
  /** Reading the compacted log behind H: the horizon it is read at (core/compaction.ts, ReadView). */
  view?: number | undefined;
  /** How long to wait at the tail before yielding "idle"; asked before each wait. */
  idleMs: () => number;
  /** Following stops, with no item, once this aborts (the client went away). */
  signal: AbortSignal;
}

export class LiveStreams {
  private readonly reads: SharedReads;

  constructor(
    store: Store,
    readonly waiters: StreamWaiters,
  ) {
    this.reads = new SharedReads(store);
  }

  async *follow(streamId: number, options: FollowOptions): AsyncGenerator<FollowItem, void, undefined> {
    const { signal } = options;
    // Tracked before the first read, so no commit after that read can go unnoticed.
    const release = this.waiters.track(streamId);
    try {
      let afterSeq = options.afterSeq;
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
}
