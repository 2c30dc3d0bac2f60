/*
 * Who is waiting for which stream. The store reports each commit's new tails; every
 * reader waiting behind one of them is woken at once, with no polling loop. Wake-ups
 * are hints: a woken reader reads the store again, which stays the truth, unless the
 * commit handed over exactly what a read would find (RecentTails).
 *
 * While a stream is tracked (somebody follows it), the last tail we were told is
 * remembered, so a follower that read up to the tail can wait without asking the
 * store again: a commit that landed between its read and its wait was told to us in
 * between, and the wait returns at once. What the commits wrote to a tracked stream is
 * kept too (RecentTails), so the woken follower is handed it instead of reading it.
 */
import type { CommitDetail } from "../storage/store.js";
import { RecentTails } from "./recent-tails.js";

export type WaitOutcome = "data" | "timeout" | "aborted" | "shutdown";

interface Waiter {
  afterSeq: number;
  settle: (outcome: WaitOutcome) => void;
}

export class StreamWaiters {
  private readonly waiting = new Map<number, Set<Waiter>>();
  private shuttingDown = false;
  private readonly stopping = new AbortController();
  /** Aborted by shutdown(), for readers that must also stop while not waiting (WebSockets). */
  readonly stopped: AbortSignal = this.stopping.signal;
  /** What the commits told of each followed stream: its tail and recent messages. */
  readonly recent = new RecentTails();

  /**
   * Remembers the stream's tails from now until the returned release is called. Call it
   * before the first read: every commit after that read is then either remembered
   * before the wait starts or wakes it.
   */
  track(streamId: number): () => void {
    return this.recent.track(streamId);
  }

  /** The last tail told for a tracked stream, if any commit was told since it was tracked. */
  knownTail(streamId: number): number | undefined {
    return this.recent.knownTail(streamId);
  }

  /**
   * Resolves when the stream's tail passes afterSeq, or on timeout, abort or shutdown.
   * On a tracked stream whose remembered tail is already past afterSeq, at once.
   */
  wait(streamId: number, afterSeq: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.shuttingDown) return Promise.resolve("shutdown");
    if (signal?.aborted) return Promise.resolve("aborted");
    const known = this.knownTail(streamId);
    if (known !== undefined && known > afterSeq) return Promise.resolve("data");
    return new Promise((resolve) => {
      let waiters = this.waiting.get(streamId);
      if (!waiters) this.waiting.set(streamId, (waiters = new Set()));
      const set = waiters;
      const waiter: Waiter = {
        afterSeq,
        settle: (outcome) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          set.delete(waiter);
          if (set.size === 0 && this.waiting.get(streamId) === set) this.waiting.delete(streamId);
          resolve(outcome);
        },
      };
      const onAbort = () => waiter.settle("aborted");
      const timer = setTimeout(() => waiter.settle("timeout"), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      set.add(waiter);
    });
  }

  /** Called after a commit (or a tail re-check) with each extended stream's new tail seq, and what the commit wrote if the store tells. */
  notify(tails: ReadonlyMap<number, number>, detail?: CommitDetail): void {
    // Before any follower wakes: the woken ones find the commit's messages already here.
    this.recent.notify(tails, detail);
    for (const [streamId, tailSeq] of tails) {
      const waiters = this.waiting.get(streamId);
      if (!waiters) continue;
      for (const waiter of [...waiters]) {
        if (tailSeq > waiter.afterSeq) waiter.settle("data");
      }
    }
  }

  /** Wakes every reader with "shutdown" and refuses new waits. */
  shutdown(): void {
    this.shuttingDown = true;
    this.stopping.abort();
    for (const waiters of [...this.waiting.values()]) {
      for (const waiter of [...waiters]) waiter.settle("shutdown");
    }
  }

  /** The streams somebody is waiting on or following (for the tail re-check). */
  streamIds(): number[] {
    return [...new Set([...this.waiting.keys(), ...this.recent.followed()])];
  }

  get count(): number {
    let total = 0;
    for (const waiters of this.waiting.values()) total += waiters.size;
    return total;
  }
}
