/*
 * Group commit for a database client: operations that arrive while a batch is being
 * committed wait and go together into the next transaction; each caller is answered
 * when the transaction that holds its operation has committed (or failed).
 */
interface Pending<Op, Result> {
  op: Op;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

const MAX_BATCH = 1000;

export class GroupCommit<Op, Result> {
  private queue: Array<Pending<Op, Result>> = [];
  private running: Promise<void> | undefined;

  constructor(private readonly commitBatch: (ops: Op[]) => Promise<Result[]>) {}

  submit(op: Op): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Resolves once everything submitted so far has been committed or failed. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const results = await this.commitBatch(batch.map((pending) => pending.op));
        batch.forEach((pending, index) => pending.resolve(results[index]!));
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.running = undefined;
  }
}
