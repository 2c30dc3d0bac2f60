/*
 * The embedded default store: one SQLite file in the data folder. Writes go through
 * the writer thread (group commit); reads run on the main thread's own read-only
 * connection, which WAL lets proceed while the writer commits.
 */
import { encodeAnnotations, encodeEventMetaWith } from "../../core/capture.js";
import { INBOX_STREAM_PATTERN } from "../../core/stream-names.js";
import { LRUCache } from "lru-cache";
import { Worker } from "node:worker_threads";
import type { CapturedRequest, Consumer, Inbox, StoredInbox, StoredMessage, StreamInfo } from "../../core/types.js";
import type {
  AppendEventOptions,
  AppendEventResult,
  CommitListener,
  DeliveryRecord,
  InboxChanges,
  NewInbox,
  ReadLimits,
  Store,
} from "../store.js";
import { openReaderConnection, type Connection } from "./connection.js";
import { CONSUMER_COLUMNS } from "./consumer-writes.js";
import { toInbox, withoutToken, type InboxRow } from "../rows.js";
import { openDataFolder, type DataFolder } from "./data-folder.js";
import { SqliteWriter, StoreWriteError, type WriterLog } from "./writer.js";
import { verifySettingsText } from "./verify-settings.js";
import { isSqliteTrouble } from "./store-trouble.js";
import { STREAM_COLUMNS, toStream, type StreamRow } from "./stream-rows.js";
import type { WriteOp, WriteResult } from "./write-ops.js";
import type { AppendRequest, AppendResult, CreateStreamRequest, CreateStreamResult, DeleteStreamResult } from "../../core/streams.js";
import type { GeneralStreams } from "../streams.js";
import type { StoreObserver } from "../store-observer.js";
import { isExpired, TouchThrottle } from "../../core/streams.js";
import { readSegmentsSync, SegmentCache, type ForkPoint } from "../segments.js";
import type { SnapshotPage, SnapshotPageRequest } from "../../core/state/snapshot.js";
import { prepareStateReads } from "./state-reads.js";
import { againIfBodyGone, bodiesFolder, fillBodies } from "./body-files.js";
import { policyText, type CompactionPolicy } from "../../core/compaction.js";

export interface SqliteStoreOptions {
  dataDir: string;
  /** How often retention and deleted inboxes are pruned (ms). */
  pruneIntervalMs?: number;
  checkpointIntervalMs?: number;
  /** Where storage trouble worth an operator's attention goes (a new data folder, failing writes, lost files). */
  logger?: WriterLog & { warn(object: object, message: string): void };
}

/**
 * The request as it crosses to the writer thread, without its annotations, which
 * travel encoded (core/capture.ts says why). Its meta is encoded once, here, and the
 * same string is stored and handed to live readers at the tail; unless the writer checks
 * a signature (`verify`): it then encodes the meta itself, with the verdict, and sends
 * it back. A plain webhook's request goes as it is, uncopied.
 */
function forWriter(
  request: CapturedRequest,
  verify: string | undefined,
):
  | { request: Omit<CapturedRequest, "annotations">; meta: string }
  | { request: Omit<CapturedRequest, "annotations">; verify: string; annotationsJson?: string } {
  const { annotations } = request;
  const plain = annotations === undefined ? request : withoutAnnotations(request);
  const annotationsJson = encodeAnnotations(annotations);
  if (verify === undefined) return { request: plain, meta: encodeEventMetaWith(plain, annotationsJson) };
  return annotationsJson === undefined ? { request: plain, verify } : { request: plain, verify, annotationsJson };
}

function withoutAnnotations(request: CapturedRequest): Omit<CapturedRequest, "annotations"> {
  // Spelled out: a rest copy (`{ annotations, ...plain }`) is several times slower.
  const { id, receivedAt, method, path, query, rawHeaders, remoteAddr, body } = request;
  return { id, receivedAt, method, path, query, rawHeaders, remoteAddr, body };
}

const PRUNE_ROWS_PER_BATCH = 2000;
/**
 * Rows one compaction step may remove. A step waits for a write batch of its own, so
 * under full ingest it gets about one batch's turn each time: a step much smaller
 * than what the appends add per batch never catches up (docs/benchmarks.md, compaction).
 */
const COMPACT_ROWS_PER_STEP = 8000;
const INBOX_CACHE_SIZE = 10_000;
/** Rows fetched per query when paging; small enough that a page of large bodies stays small. */
const READ_CHUNK_ROWS = 64;
const FIRST_CHUNK_ROWS = 8;

const INBOX_COLUMNS = "id, name, stream_id AS streamId, token_hash AS tokenHash, settings, created_at AS createdAt";
/** bodyFile: the body is in a file of its own (body-files.ts); fillBodies() reads it and drops the flag. */
const MESSAGE_COLUMNS = "seq, created_at AS createdAt, data, meta, body_file AS bodyFile";

export class SqliteStore implements Store, GeneralStreams {
  readonly general: GeneralStreams = this;
  private readonly touches = new TouchThrottle();
  private readonly segments = new SegmentCache(async (streamId) => this.sql.forkPoint.get(streamId) as ForkPoint | undefined);
  private readonly sql;
  private readonly readSnapshot: <T>(read: () => T) => T;
  private readonly readStatePage: ReturnType<typeof prepareStateReads>;
  /** Where large bodies are stored (body-files.ts). */
  private readonly bodies: string;
  private pruneTimer: NodeJS.Timeout | undefined;
  /** Inboxes by id, so ingest needs no query; this process is the only writer, so it stays true. */
  private readonly inboxCache = new LRUCache<string, StoredInbox>({ max: INBOX_CACHE_SIZE });
  private closing: Promise<void> | undefined;
  /** An evicted entry costs one extra "last seen" write, nothing else. */
  private readonly lastSeenWrites = new LRUCache<string, number>({ max: 10_000 });

  private checkpointer: Worker;

  private constructor(
    private readonly reader: Connection,
    private readonly writer: SqliteWriter,
    private readonly startCheckpointer: () => Worker,
    private readonly log: WriterLog | undefined,
    pruneIntervalMs: number,
    private readonly folder: DataFolder,
  ) {
    this.checkpointer = this.watchCheckpointer();
    this.sql = {
      inbox: reader.prepare(`SELECT ${INBOX_COLUMNS} FROM inboxes WHERE id = ? AND deleted_at IS NULL`),
      inboxes: reader.prepare(`SELECT ${INBOX_COLUMNS} FROM inboxes WHERE deleted_at IS NULL ORDER BY created_at, id`),
      stream: reader.prepare(`SELECT ${STREAM_COLUMNS} FROM streams WHERE name = ? AND deleted_at IS NULL`),
      streamById: reader.prepare(`SELECT ${STREAM_COLUMNS} FROM streams WHERE id = ? AND deleted_at IS NULL`),
      messages: reader.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE stream_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`),
      forkPoint: reader.prepare("SELECT forked_from AS forkedFrom, fork_seq AS forkSeq FROM streams WHERE id = ?"),
      generalStreams: reader.prepare(
        `SELECT ${STREAM_COLUMNS} FROM streams WHERE deleted_at IS NULL AND soft_deleted = 0 AND name NOT LIKE '${INBOX_STREAM_PATTERN}' ORDER BY name`,
      ),
      records: reader.prepare("SELECT key, value FROM records WHERE kind = ? ORDER BY key"),
      message: reader.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE stream_id = ? AND seq = ?`),
      messageTime: reader.prepare("SELECT created_at AS createdAt FROM messages WHERE stream_id = ? AND seq = ?"),
      consumer: reader.prepare(`SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE stream_id = ? AND name = ?`),
      consumers: reader.prepare(`SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE stream_id = ? ORDER BY name`),
      delivery: reader.prepare("SELECT seq, event_id AS id, deliveries, first_at AS firstAt FROM dedupe WHERE stream_id = ? AND key = ?"),
    };
    // BEGIN (deferred) … COMMIT on the read-only connection: the snapshot is taken at the first SELECT.
    const inTransaction = reader.transaction((read: () => unknown) => read());
    this.readSnapshot = <T>(read: () => T): T => againIfBodyGone(() => inTransaction(read) as T);
    this.bodies = bodiesFolder(folder.databaseFile);
    this.readStatePage = prepareStateReads(reader, this.bodies);
    this.pruneTimer = setInterval(() => void this.pruneAndCompact(), pruneIntervalMs);
    this.pruneTimer.unref();
  }

  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const { logger } = options;
    const folder = openDataFolder(options.dataDir, logger);
    const file = folder.databaseFile;
    let writer: SqliteWriter;
    try {
      writer = await SqliteWriter.start(file, logger);
      folder.markInitialised();
    } catch (error) {
      folder.release();
      throw error;
    }
    writer.onFailure((error) => {
      if (!error.permanent) return;
      logger?.error(
        { reason: error.permanent, dataDir: options.dataDir, err: error },
        `the data folder ${options.dataDir} lost its database under the running server (${error.message}); ` +
          "no longer accepting writes (503) until an operator restores the folder and restarts",
      );
    });
    const startCheckpointer = () =>
      new Worker(new URL("./checkpoint-thread.js", import.meta.url), {
        workerData: { file, intervalMs: options.checkpointIntervalMs ?? 1000 },
      });
    return new SqliteStore(openReaderConnection(file), writer, startCheckpointer, logger, options.pruneIntervalMs ?? 5000, folder);
  }

  /*
   * The checkpoint thread is an optimisation (the writer bounds the WAL by itself), so
   * its death is logged and it is started again a second later, never thrown at the
   * process as an unhandled worker error.
   */
  private watchCheckpointer(): Worker {
    const worker = this.startCheckpointer();
    worker.on("error", (error) => this.log?.error({ err: error }, "sqlite checkpoint thread failed"));
    worker.on("exit", () => {
      if (this.closing || this.checkpointer !== worker) return;
      setTimeout(() => {
        if (!this.closing) this.checkpointer = this.watchCheckpointer();
      }, 1000).unref();
    });
    return worker;
  }

  private write(op: WriteOp): Promise<WriteResult> {
    return this.writer.submit(op);
  }

  private pruning = false;

  /** One run of the periodic work: retention, then compaction; a run still going skips the next tick. */
  private async pruneAndCompact(): Promise<void> {
    if (this.pruning) return;
    this.pruning = true;
    try {
      this.writer.observers.pruned(await this.prune());
      await this.compactNow();
    } finally {
      this.pruning = false;
    }
  }

  private compactionRound = 0;

  /** Compaction steps (compaction-writes.ts), each its own small write, until no work is left. */
  async compactNow(): Promise<number> {
    const round = ++this.compactionRound;
    let total = 0;
    for (;;) {
      const result = await this.write({ kind: "compact", now: Date.now(), maxRows: COMPACT_ROWS_PER_STEP, round }).catch(() => undefined);
      if (result?.status !== "compacted") break;
      total += result.removed;
      this.writer.observers.compacted(result.removed);
      if (!result.more) break;
    }
    return total;
  }

  async setCompactionPolicy(streamId: number, policy: CompactionPolicy | null): Promise<boolean> {
    return (await this.write({ kind: "setCompactionPolicy", streamId, policy: policyText(policy) })).status === "updated";
  }

  /** Retention and the removal of deleted inboxes' events, in small write batches. */
  async prune(): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await this.write({ kind: "prune", now: Date.now(), maxRows: PRUNE_ROWS_PER_BATCH }).catch(() => undefined);
      if (result?.status !== "pruned") return total;
      total += result.rows;
      if (result.rows < PRUNE_ROWS_PER_BATCH) return total;
    }
  }

  async createInbox(inbox: NewInbox): Promise<Inbox> {
    const now = Date.now();
    const result = await this.write({ kind: "createInbox", inbox, now });
    if (result.status !== "created") throw new Error(`unexpected result ${result.status}`);
    return { id: inbox.id, name: inbox.name, streamId: result.streamId, settings: inbox.settings, createdAt: now };
  }

  async getInbox(id: string): Promise<StoredInbox | undefined> {
    const cached = this.inboxCache.get(id);
    if (cached) return cached;
    const row = this.sql.inbox.get(id) as InboxRow | undefined;
    if (!row) return undefined;
    const inbox = toInbox(row);
    this.inboxCache.set(id, inbox);
    return inbox;
  }

  async listInboxes(): Promise<Inbox[]> {
    return (this.sql.inboxes.all() as InboxRow[]).map((row) => withoutToken(toInbox(row)));
  }

  async updateInbox(id: string, changes: InboxChanges): Promise<Inbox | undefined> {
    const result = await this.write({ kind: "updateInbox", id, changes });
    this.inboxCache.delete(id);
    if (result.status !== "updated") return undefined;
    const inbox = await this.getInbox(id);
    return inbox && withoutToken(inbox);
  }

  async deleteInbox(id: string): Promise<boolean> {
    const result = await this.write({ kind: "deleteInbox", id, now: Date.now() });
    this.inboxCache.delete(id);
    return result.status === "deleted";
  }

  async appendEvent(streamId: number, request: CapturedRequest, options?: AppendEventOptions): Promise<AppendEventResult> {
    const dedupe = options?.dedupe && { ...options.dedupe, now: Date.now() };
    const verify = options?.verify && verifySettingsText(options.verify);
    const op: WriteOp = { kind: "appendEvent", streamId, ...forWriter(request, verify), ...(dedupe ? { dedupe } : {}) };
    const result = await this.write(op);
    if (result.status === "appended" || result.status === "duplicate" || result.status === "refused") return result;
    return { status: "not_found" };
  }

  async findDelivery(streamId: number, key: string): Promise<DeliveryRecord | undefined> {
    return this.sql.delivery.get(streamId, key) as DeliveryRecord | undefined;
  }

  async getConsumer(streamId: number, name: string): Promise<Consumer | undefined> {
    return this.sql.consumer.get(streamId, name) as Consumer | undefined;
  }

  async listConsumers(streamId: number): Promise<Consumer[]> {
    return this.sql.consumers.all(streamId) as Consumer[];
  }

  private async writeConsumer(op: WriteOp): Promise<Consumer> {
    const result = await this.write(op);
    if (result.status !== "consumer") throw new Error(`unexpected result ${result.status}`);
    return result.consumer;
  }

  ensureConsumer(streamId: number, name: string, startSeq: number): Promise<Consumer> {
    return this.writeConsumer({ kind: "ensureConsumer", streamId, name, startSeq, now: Date.now() });
  }

  ackConsumer(streamId: number, name: string, seq: number): Promise<Consumer> {
    return this.writeConsumer({ kind: "ackConsumer", streamId, name, seq, now: Date.now() });
  }

  async deleteConsumer(streamId: number, name: string): Promise<boolean> {
    return (await this.write({ kind: "deleteConsumer", streamId, name })).status === "deleted";
  }

  async markConsumerSeen(streamId: number, name: string): Promise<void> {
    // Reads are frequent; writing "last seen" more than once a second per consumer buys nothing.
    const key = `${streamId}/${name}`;
    const now = Date.now();
    if (now - (this.lastSeenWrites.get(key) ?? 0) < 1000) return;
    this.lastSeenWrites.set(key, now);
    await this.write({ kind: "markConsumerSeen", streamId, name, now });
  }

  async getStream(name: string): Promise<StreamInfo | undefined> {
    const row = this.sql.stream.get(name) as StreamRow | undefined;
    return row && toStream(row);
  }

  async getStreamById(id: number): Promise<StreamInfo | undefined> {
    const row = this.sql.streamById.get(id) as StreamRow | undefined;
    return row && toStream(row);
  }

  async readMessages(streamId: number, afterSeq: number, limits: ReadLimits): Promise<StoredMessage[]> {
    const segments = await this.segments.get(streamId);
    // All chunks of a page in one read transaction: one snapshot, so a prune committed
    // between two chunks cannot make the page jump over the rows it removed.
    return this.readSnapshot(() =>
      readSegmentsSync(segments, afterSeq, limits, (owner, from, toSeq, remaining) => this.readChunks(owner, from, toSeq, remaining)),
    );
  }

  /**
   * Rows come in chunks (all() is much cheaper per row than iterate()), sized from the
   * rows seen so far so that a chunk of large bodies stays near the byte limit.
   */
  private readChunks(owner: number, from: number, toSeq: number, remaining: ReadLimits): StoredMessage[] {
    const messages: StoredMessage[] = [];
    let bytes = 0;
    let after = from;
    while (messages.length < remaining.maxMessages) {
      const average = messages.length === 0 ? 0 : bytes / messages.length;
      const fitting = average === 0 ? FIRST_CHUNK_ROWS : Math.ceil((remaining.maxBytes - bytes) / average);
      const chunk = Math.max(1, Math.min(READ_CHUNK_ROWS, fitting, remaining.maxMessages - messages.length));
      const rows = fillBodies(this.bodies, owner, this.sql.messages.all(owner, after, toSeq, chunk) as StoredMessage[]);
      for (const row of rows) {
        messages.push(row);
        bytes += row.data.length;
        if (bytes >= remaining.maxBytes) return messages;
      }
      if (rows.length < chunk) break;
      after = rows.at(-1)!.seq;
    }
    return messages;
  }

  async readMessage(streamId: number, seq: number): Promise<StoredMessage | undefined> {
    const owner = await this.segments.ownerOf(streamId, seq);
    return againIfBodyGone(() => {
      const row = this.sql.message.get(owner, seq) as StoredMessage | undefined;
      return row && fillBodies(this.bodies, owner, [row])[0];
    });
  }

  async readSnapshotPage(streamId: number, request: SnapshotPageRequest): Promise<SnapshotPage> {
    return this.readSnapshot(() => this.readStatePage(streamId, request));
  }

  async messageTime(streamId: number, seq: number): Promise<number | undefined> {
    const row = this.sql.messageTime.get(await this.segments.ownerOf(streamId, seq), seq) as { createdAt: number } | undefined;
    return row?.createdAt;
  }

  private async writeStream<T>(op: WriteOp): Promise<T> {
    const result = await this.write(op);
    if (result.status !== "stream") throw new Error(`unexpected result ${result.status}`);
    return result.result as T;
  }

  createStream(request: CreateStreamRequest): Promise<CreateStreamResult> {
    return this.writeStream({ kind: "createStream", request, now: Date.now() });
  }

  appendStream(request: AppendRequest): Promise<AppendResult> {
    return this.writeStream({ kind: "appendStream", request, now: Date.now() });
  }

  deleteStream(name: string): Promise<DeleteStreamResult> {
    return this.writeStream({ kind: "deleteStream", name, now: Date.now() });
  }

  touchStream(stream: StreamInfo): void {
    const now = Date.now();
    if (!this.touches.due(stream, now)) return;
    this.write({ kind: "touchStreams", streamIds: [stream.id], now }).catch(() => undefined);
  }

  async listGeneralStreams(): Promise<StreamInfo[]> {
    const now = Date.now();
    return (this.sql.generalStreams.all() as StreamRow[]).map(toStream).filter((stream) => !isExpired(stream, now));
  }

  async listRecords(kind: string): Promise<Array<{ key: string; value: string }>> {
    return this.sql.records.all(kind) as Array<{ key: string; value: string }>;
  }

  async putRecord(kind: string, key: string, value: string | null): Promise<void> {
    await this.write({ kind: "putRecord", recordKind: kind, key, value });
  }

  onCommit(listener: CommitListener): void {
    this.writer.onCommit(listener);
  }

  observe(observer: StoreObserver): void {
    this.writer.observers.add(observer);
  }

  isHealthy(): boolean {
    return this.writer.healthy;
  }

  isFailure(error: unknown): boolean {
    // Once closing, a read may meet a closed connection (a TypeError from better-sqlite3).
    if (this.closing) return true;
    if (error instanceof StoreWriteError) return !error.bug;
    return isSqliteTrouble(error);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pruneTimer);
      await this.writer.close();
      const checkpointer = this.checkpointer;
      checkpointer.on("message", (message: { type: string; error?: string }) => {
        // The WAL is durable: the next start copies what this last checkpoint could not.
        if (message.type === "closed" && message.error) this.log?.error({ error: message.error }, "final sqlite checkpoint failed");
      });
      const stopped = new Promise<void>((resolve) => checkpointer.once("exit", () => resolve()));
      checkpointer.postMessage({ type: "close" });
      await stopped;
      this.reader.close();
      this.folder.release();
    })();
    return this.closing;
  }
}
