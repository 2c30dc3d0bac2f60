/*
 * The main thread's side of the writer thread: group commit. Operations that arrive
 * while a batch is being committed wait and go together into the next transaction;
 * each caller is answered when the transaction holding its operation has committed.
 */
import { Worker } from "node:worker_threads";
import type { CommitListener } from "../store.js";
import {
  writeOpBytes,
  type FromWriter,
  type PermanentWriteFailure,
  type ToWriter,
  type WriteOp,
  type WriteResult,
} from "./write-ops.js";

const MAX_BATCH_OPS = 2000;
const MAX_BATCH_BYTES = 32 * 1024 * 1024;
/*
 * Two batches in flight: the thread starts the next transaction the moment it has
 * committed one, instead of idling through a round trip to this thread, while
 * everything that arrives during a commit still shares the next transaction.
 */
const MAX_BATCHES_IN_FLIGHT = 2;

interface Pending {
  op: WriteOp;
  resolve: (result: WriteResult) => void;
  reject: (error: Error) => void;
}

export class StoreWriteError extends Error {
  /** Set when the writer must stay down (never restarted): see PermanentWriteFailure. */
  constructor(
    message: string,
    readonly permanent?: PermanentWriteFailure,
  ) {
    super(message);
  }
}

export class SqliteWriter {
  private queue: Pending[] = [];
  /** Batches sent to the writer thread and not answered yet, oldest first. */
  private readonly inFlight: Array<{ id: number; batch: Pending[] }> = [];
  private nextBatchId = 1;
  private failure: StoreWriteError | undefined;
  private readonly listeners: CommitListener[] = [];
  private readonly failureListeners: Array<(error: StoreWriteError) => void> = [];
  private closed: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];

  private constructor(private readonly worker: Worker) {
    worker.on("message", (message: FromWriter) => this.onMessage(message));
    worker.on("error", (error) => this.fail(new StoreWriteError(`writer thread crashed: ${error.message}`)));
    worker.on("exit", () => this.fail(new StoreWriteError("writer thread stopped")));
  }

  static async start(file: string): Promise<SqliteWriter> {
    const worker = new Worker(new URL("./writer-thread.js", import.meta.url), { workerData: { file } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromWriter) => {
        if (message.type === "ready") resolve();
        else if (message.type === "open_failed") reject(new Error(`cannot open ${file}: ${message.message}`));
        else return;
        worker.off("message", onMessage);
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
    return new SqliteWriter(worker);
  }

  get healthy(): boolean {
    return this.failure === undefined;
  }

  /** Told once, when the writer stops for good. */
  onFailure(listener: (error: StoreWriteError) => void): void {
    this.failureListeners.push(listener);
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  submit(op: WriteOp): Promise<WriteResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StoreWriteError("store is closing"));
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (this.inFlight.length < MAX_BATCHES_IN_FLIGHT) this.flush();
    });
  }

  private flush(): void {
    if (this.queue.length === 0) {
      if (this.inFlight.length === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES) {
      bytes += writeOpBytes(this.queue[count]!.op);
      count++;
    }
    const batch = this.queue.splice(0, count);
    const id = this.nextBatchId++;
    this.inFlight.push({ id, batch });
    const message: ToWriter = { type: "batch", id, ops: batch.map((pending) => pending.op) };
    this.worker.postMessage(message);
  }

  private onMessage(message: FromWriter): void {
    if (message.type !== "done" && message.type !== "failed") return;
    const inFlight = this.inFlight[0];
    if (!inFlight || inFlight.id !== message.id) return;
    this.inFlight.shift();
    if (message.type === "done") {
      if (message.extended.length > 0) {
        const extended = new Map(message.extended);
        for (const listener of this.listeners) listener(extended);
      }
      inFlight.batch.forEach((pending, index) => pending.resolve(message.results[index]!));
    } else if (message.permanent) {
      const error = new StoreWriteError(`writes stopped: ${message.message}`, message.permanent);
      this.inFlight.unshift(inFlight);
      this.fail(error);
      return;
    } else {
      const error = new StoreWriteError(`commit failed: ${message.message}`);
      for (const pending of inFlight.batch) pending.reject(error);
    }
    this.flush();
  }

  private fail(error: StoreWriteError): void {
    if (this.failure) return;
    this.failure = error;
    const pending = [...this.inFlight.splice(0).flatMap((entry) => entry.batch), ...this.queue.splice(0)];
    for (const entry of pending) entry.reject(error);
    for (const wake of this.idleWaiters.splice(0)) wake();
    for (const listener of this.failureListeners) listener(error);
  }

  /** Lets queued operations commit, then stops the thread. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.inFlight.length > 0 || this.queue.length > 0) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
      // A permanently failed thread is still running (it refuses batches) and must be stopped.
      if (this.failure && !this.failure.permanent) return;
      const stopped = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
      this.worker.postMessage({ type: "close" } satisfies ToWriter);
      await stopped;
    })();
    return this.closed;
  }
}
