/*
 * Who is waiting for which stream. The store reports each commit's new tails; every
 * reader waiting behind one of them is woken at once, with no polling loop. Wake-ups
 * are hints: a woken reader reads the store again, which stays the truth.
 */
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

  /** Resolves when the stream's tail passes afterSeq, or on timeout, abort or shutdown. */
  wait(streamId: number, afterSeq: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.shuttingDown) return Promise.resolve("shutdown");
    if (signal?.aborted) return Promise.resolve("aborted");
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

  /**
   * Like wait(), but first registers and then asks the store for the current tail, so
   * a commit that landed after the caller's last read (while it was writing a page, or
   * during a query) cannot slip between that read and the registration.
   */
  async waitAfterCheck(
    streamId: number,
    afterSeq: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    currentTail: () => Promise<number | undefined>,
  ): Promise<WaitOutcome> {
    const waiting = this.wait(streamId, afterSeq, timeoutMs, signal);
    const tail = await currentTail().catch(() => undefined);
    if (tail !== undefined && tail > afterSeq) this.notify(new Map([[streamId, tail]]));
    return waiting;
  }

  /** Called after a commit with each extended stream's new tail seq. */
  notify(tails: ReadonlyMap<number, number>): void {
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

  /** The streams somebody is waiting on. */
  streamIds(): number[] {
    return [...this.waiting.keys()];
  }

  get count(): number {
    let total = 0;
    for (const waiters of this.waiting.values()) total += waiters.size;
    return total;
  }
}
