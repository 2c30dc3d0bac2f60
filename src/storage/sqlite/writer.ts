/*
 * The main thread's side of the writer thread: group commit. Operations that arrive
 * while a batch is being committed wait and go together into the next transaction;
 * each caller is answered when the transaction holding its operation has committed.
 * A thread that dies is started again (it reopens the file); what it had not answered
 * is refused, never acknowledged.
 */
import { Worker } from "node:worker_threads";
import type { CommitListener } from "../store.js";
import { StoreObservers } from "../store-observer.js";
import { commitDetail } from "./commit-detail.js";
import {
  writeOpBytes,
  type FromWriter,
  type PermanentWriteFailure,
  type ToWriter,
  type WriteOp,
  type WriteResult,
  type WriterOptions,
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

/**
 * Why a write was not committed. `fatal`: restarting cannot help (the store stays down);
 * `permanent` says why, when the writer itself found it (see PermanentWriteFailure);
 * `bug`: the transaction failed on an error of our code, not of the disk or the file.
 */
export class StoreWriteError extends Error {
  readonly fatal: boolean;
  readonly permanent: PermanentWriteFailure | undefined;
  readonly bug: boolean;

  constructor(message: string, options: { fatal?: boolean; permanent?: PermanentWriteFailure; bug?: boolean } = {}) {
    super(message);
    this.permanent = options.permanent;
    this.fatal = options.fatal ?? options.permanent !== undefined;
    this.bug = options.bug ?? false;
  }
}

/** Where the writer reports what an operator should know (a pino logger fits). */
export interface WriterLog {
  error(details: object, message: string): void;
  info(details: object, message: string): void;
}

const silentLog: WriterLog = { error: () => undefined, info: () => undefined };

/* A dead writer thread is started again after this, doubling per failed start up to the cap. */
const RESTART_FIRST_MS = 50;
const RESTART_MAX_MS = 5000;
/* While writes fail, a tiny write every PROBE_MS finds out when they work again, traffic or not. */
const PROBE_MS = 1000;
const PROBE_OP: Omit<Extract<WriteOp, { kind: "putRecord" }>, "value"> = {
  kind: "putRecord",
  recordKind: "tailhook/health",
  key: "probe",
};

function startWorker(file: string, mustExist: boolean): Promise<Worker> {
  const workerData: WriterOptions = { file, mustExist };
  const worker = new Worker(new URL("./writer-thread.js", import.meta.url), { workerData });
  return new Promise<Worker>((resolve, reject) => {
    const onMessage = (message: FromWriter) => {
      if (message.type === "ready") resolve(worker);
      else if (message.type === "open_failed") reject(new Error(`cannot open ${file}: ${message.message}`));
      else return;
      worker.off("message", onMessage);
      worker.off("error", reject);
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
  });
}

/*
 * Health follows write outcomes: unhealthy from a failed commit until the next one
 * that succeeds, while the thread is down or restarting, and for good after a fatal
 * failure.
 */
export class SqliteWriter {
  private queue: Pending[] = [];
  private flushScheduled = false;
  /** Batches sent to the writer thread and not answered yet, oldest first. */
  private readonly inFlight: Array<{ id: number; batch: Pending[] }> = [];
  private nextBatchId = 1;
  /** The running thread; undefined while it is being restarted, or after a fatal failure. */
  private worker: Worker | undefined;
  private fatalFailure: StoreWriteError | undefined;
  private lastWriteFailed = false;
  private restartDelayMs = RESTART_FIRST_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly listeners: CommitListener[] = [];
  readonly observers = new StoreObservers();
  private readonly failureListeners: Array<(error: StoreWriteError) => void> = [];
  private closed: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];

  private constructor(
    private readonly file: string,
    worker: Worker,
    private readonly log: WriterLog,
  ) {
    this.attach(worker);
  }

  static async start(file: string, log: WriterLog = silentLog): Promise<SqliteWriter> {
    return new SqliteWriter(file, await startWorker(file, false), log);
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    let crash: Error | undefined;
    worker.on("message", (message: FromWriter) => this.onMessage(message));
    worker.on("error", (error) => (crash = error));
    worker.on("exit", (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(new StoreWriteError(crash ? `writer thread crashed: ${crash.message}` : `writer thread stopped (exit code ${code})`));
    });
  }

  get healthy(): boolean {
    return this.fatalFailure === undefined && this.worker !== undefined && !this.lastWriteFailed;
  }

  /** Told once, when the writer stops for good. */
  onFailure(listener: (error: StoreWriteError) => void): void {
    this.failureListeners.push(listener);
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  submit(op: WriteOp): Promise<WriteResult> {
    if (this.fatalFailure) return Promise.reject(this.fatalFailure);
    if (this.closed) return Promise.reject(new StoreWriteError("store is closing"));
    // Nothing waits for a restart: the sender gets its 503 now and retries.
    if (!this.worker) return Promise.reject(new StoreWriteError("writer thread is restarting"));
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      this.flushSoon();
    });
  }

  /**
   * Sends the queue at the end of this turn of the event loop, not at once: the
   * requests read in one turn then share one batch (one message each way, one
   * transaction, one fsync) instead of the first going alone. docs/benchmarks.md,
   * issue #15, has the before/after.
   */
  private flushSoon(): void {
    if (this.flushScheduled || this.inFlight.length >= MAX_BATCHES_IN_FLIGHT) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.inFlight.length < MAX_BATCHES_IN_FLIGHT) this.flush();
    });
  }

  private flush(): void {
    if (this.queue.length === 0 || !this.worker) {
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
      this.writeSucceeded();
      this.observers.committedBatch(inFlight.batch.length);
      const detail = commitDetail(
        inFlight.batch.map((pending) => pending.op),
        message.results,
      );
      if (message.extended.length > 0 || detail.otherChanges) {
        const extended = new Map(message.extended);
        for (const listener of this.listeners) listener(extended, detail);
      }
      inFlight.batch.forEach((pending, index) => pending.resolve(message.results[index]!));
    } else if (message.permanent) {
      const error = new StoreWriteError(`writes stopped: ${message.message}`, { permanent: message.permanent });
      this.inFlight.unshift(inFlight);
      this.fail(error);
      return;
    } else {
      const error = new StoreWriteError(`commit failed: ${message.message}`, { bug: message.bug ?? false });
      this.writeFailed(error);
      for (const pending of inFlight.batch) pending.reject(error);
    }
    this.flush();
  }

  private writeSucceeded(): void {
    this.restartDelayMs = RESTART_FIRST_MS;
    if (!this.lastWriteFailed) return;
    this.lastWriteFailed = false;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.log.info({}, "sqlite writes succeed again");
  }

  /** One log line per change to failing, not one per failed batch. */
  private writeFailed(error: StoreWriteError): void {
    if (!this.lastWriteFailed) this.log.error({ err: error }, "sqlite write failed; answering 503 until a write succeeds");
    this.lastWriteFailed = true;
    if (this.probeTimer || this.closed || this.fatalFailure) return;
    this.probeTimer = setInterval(() => {
      if (!this.worker || this.inFlight.length > 0 || this.queue.length > 0) return;
      this.submit({ ...PROBE_OP, value: String(Date.now()) }).catch(() => undefined);
    }, PROBE_MS);
    this.probeTimer.unref();
  }

  /*
   * The thread is gone or the store cannot go on: what was sent and not answered is
   * refused (it was never acknowledged), and the thread is started again, unless the
   * failure is fatal.
   */
  private fail(error: StoreWriteError): void {
    if (this.fatalFailure) return;
    if (error.fatal) {
      this.fatalFailure = error;
      // The store's own listener says why in one loud line; without one, a generic line.
      if (this.failureListeners.length === 0) this.log.error({ err: error }, "sqlite store failed for good; answering 503 until restarted");
      for (const listener of this.failureListeners) listener(error);
      clearInterval(this.probeTimer);
      const worker = this.worker;
      this.worker = undefined;
      void worker?.terminate();
    } else {
      this.writeFailed(error);
    }
    const pending = [...this.inFlight.splice(0).flatMap((entry) => entry.batch), ...this.queue.splice(0)];
    for (const entry of pending) entry.reject(error);
    for (const wake of this.idleWaiters.splice(0)) wake();
    if (!error.fatal) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.restartTimer || this.closed || this.fatalFailure || this.worker) return;
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(delay * 2, RESTART_MAX_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      startWorker(this.file, true).then(
        (worker) => {
          if (this.closed || this.fatalFailure) return void worker.terminate();
          this.log.info({}, "sqlite writer thread restarted");
          this.attach(worker);
        },
        (error: unknown) => {
          this.log.error({ err: error }, "sqlite writer thread did not start again; retrying");
          this.scheduleRestart();
        },
      );
    }, delay);
  }

  /** Lets queued operations commit, then stops the thread. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.inFlight.length > 0 || this.queue.length > 0) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
      clearInterval(this.probeTimer);
      clearTimeout(this.restartTimer);
      const worker = this.worker;
      if (!worker) return;
      this.worker = undefined;
      const stopped = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      worker.postMessage({ type: "close" } satisfies ToWriter);
      await stopped;
    })();
    return this.closed;
  }
}
