/*
 * The scale-out store: any number of tailhook processes share one PostgreSQL
 * database. Appends are group-committed per process; a stream's row lock hands out
 * sequence numbers, so they stay gapless across processes and commit in order (no
 * reader sees seq n+1 before seq n). After a commit, NOTIFY tells the other
 * processes' readers — only as a hint: readers also re-check on a timer.
 */
import postgres from "postgres";
import type { CapturedRequest, Consumer, Inbox, StoredInbox, StoredMessage, StreamInfo } from "../../core/types.js";
import { checkAppend, reportVerdict } from "../append-verification.js";
import type {
  AppendEventOptions,
  AppendEventResult,
  CommitListener,
  DeliveryRecord,
  InboxChanges,
  Leadership,
  NewInbox,
  ReadLimits,
  Store,
} from "../store.js";
import { GroupCommit } from "./group-commit.js";
import { StoreObservers, type StoreObserver } from "../store-observer.js";
import { LeaderLock } from "./leader-lock.js";
import { PgGeneralStreams } from "./pg-general-streams.js";
import { checkServerDurability, DURABLE_SESSION_PARAMETERS, readServerDurability, type ServerDurability } from "./durability.js";
import { SegmentCache } from "../segments.js";
import { migrate } from "./migrations.js";
import { WAKE_ALL } from "../../core/stream-rules.js";
import { writeAppendBatch, type AppendOp } from "./pg-appends.js";
import { decodeCommitNotice, encodeCommitNotice } from "./commit-notify.js";
import { randomUUID } from "node:crypto";
import { PgInboxes } from "./pg-inboxes.js";
import { pruneHeads } from "./pg-prune.js";
import { PgCompaction } from "./pg-compaction.js";
import type { CompactionPolicy } from "../../core/compaction.js";
import { DEAD_CONNECTION_CODES, isDatabaseTrouble, isKnownClientWriteBug, isWriteTrouble } from "./write-trouble.js";
import { PgReads, type TrackQuery } from "./pg-reads.js";
import { PgConsumers } from "./pg-consumers.js";
import { readSnapshotPage } from "./pg-state.js";
import type { SnapshotPage, SnapshotPageRequest } from "../../core/state/snapshot.js";

export interface PostgresStoreOptions {
  url: string;
  /** A schema of its own (created if missing): lets tests and tenants share one database. */
  schema?: string;
  poolSize?: number;
  pruneIntervalMs?: number;
}

/* While writes fail, a tiny write every WRITE_PROBE_MS finds out when they work again, traffic or not. */
const WRITE_PROBE_MS = 1000;

export class PostgresStore implements Store {
  private readonly listeners: CommitListener[] = [];
  private readonly observers = new StoreObservers();
  private readonly appends: GroupCommit<AppendOp, AppendEventResult>;
  private healthy = true;
  /** Runs while writes fail (the database refused one for its own trouble); the next write that commits stops it. */
  private writeProbe: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  /** One channel per schema: stream ids repeat across schemas sharing a database. */
  readonly channel: string;
  /** Marks this store's NOTIFYs, so their echo is not announced a second time. */
  private readonly origin = randomUUID();
  readonly general: PgGeneralStreams;
  private readonly segments: SegmentCache;
  private readonly reads: PgReads;
  private readonly consumers: PgConsumers;
  private readonly inboxes: PgInboxes;
  private readonly compaction: PgCompaction;

  private constructor(
    private readonly sql: postgres.Sql,
    private readonly pingSql: postgres.Sql,
    private readonly url: string,
    private readonly schema: string | undefined,
  ) {
    this.channel = `tailhook_${schema ?? "public"}`.slice(0, 63);
    this.appends = new GroupCommit((ops) => this.commitAppends(ops));
    this.segments = new SegmentCache(async (streamId) => {
      const [point] = await this.track(
        () => this.sql<Array<{ forkedFrom: number | null; forkSeq: number | null }>>`
          SELECT forked_from AS "forkedFrom", fork_seq AS "forkSeq" FROM streams WHERE id = ${streamId}`,
      );
      return point;
    });
    this.general = new PgGeneralStreams({
      sql,
      track: (query) => this.track(query),
      publish: (tails, tx) => this.notify(tx, tails),
      listeners: this.listeners,
      segments: this.segments,
    });
    const track: TrackQuery = (query) => this.track(query);
    this.reads = new PgReads(sql, track, this.segments);
    this.consumers = new PgConsumers(sql, track);
    this.inboxes = new PgInboxes(sql, track);
    this.compaction = new PgCompaction(sql);
  }

  /** The client library's known harmless timer error (write-trouble.ts); the process guard asks. */
  isIgnorableProcessError(error: unknown): boolean {
    return isKnownClientWriteBug(error);
  }

  /** fsync and synchronous_commit as one of the pool's sessions sees them (checked at open). */
  durabilitySettings(): Promise<ServerDurability> {
    return readServerDurability(this.sql);
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    const sql = postgres(options.url, {
      max: options.poolSize ?? 10,
      // Come back quickly after an outage: reconnect within a quarter second at most, and
      // give up on a connection attempt after 1 s so requests answer 503 instead of hanging.
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.25),
      connect_timeout: 1,
      onnotice: () => undefined,
      types: {
        bigint: { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) },
      },
      // Startup parameters: synchronous_commit here wins over the database's and role's.
      connection: { ...DURABLE_SESSION_PARAMETERS, ...(schema ? { search_path: schema } : {}) },
    });
    try {
      checkServerDurability(await readServerDurability(sql));
      if (schema) await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await migrate(sql);
      // One connection for /readyz, dropped when idle: no backoff, no queue behind load.
      const pingSql = postgres(options.url, { max: 1, idle_timeout: 2, connect_timeout: 1, backoff: () => 0, onnotice: () => undefined });
      const store = new PostgresStore(sql, pingSql, options.url, schema);
      await sql.listen(store.channel, (payload) => store.onNotification(payload));
      store.pruneTimer = setInterval(() => void store.pruneAndCompact(), options.pruneIntervalMs ?? 5000);
      store.pruneTimer.unref();
      return store;
    } catch (error) {
      await sql.end({ timeout: 1 });
      throw error;
    }
  }

  private onNotification(payload: string): void {
    const notice = decodeCommitNotice(this.origin, payload);
    // Our own commits were announced to our listeners right after they committed.
    if (notice.kind === "own") return;
    if (notice.tails.size > 0) for (const listener of this.listeners) listener(notice.tails);
  }

  /** Tells the other processes about these tails when `tx` commits. */
  private async notify(tx: postgres.TransactionSql, tails: ReadonlyMap<number, number>): Promise<void> {
    await tx`SELECT pg_notify(${this.channel}, ${encodeCommitNotice(this.origin, tails)})`;
  }

  /** Runs a query, tracking whether the database answers (for /readyz and /healthz). */
  private async track<T>(query: () => Promise<T>): Promise<T> {
    try {
      const result = await query();
      this.healthy = true;
      return result;
    } catch (error) {
      if (!(error instanceof postgres.PostgresError)) this.healthy = false;
      if (isWriteTrouble(error)) this.writesFailing();
      throw error;
    }
  }

  private writesFailing(): void {
    if (this.writeProbe || this.closing) return;
    this.writeProbe = setInterval(() => {
      void this.sql`
        INSERT INTO records (kind, key, value) VALUES ('tailhook/health', 'probe', ${String(Date.now())})
        ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`.then(
        () => this.writesWork(),
        () => undefined,
      );
    }, WRITE_PROBE_MS);
    this.writeProbe.unref();
  }

  private writesWork(): void {
    clearInterval(this.writeProbe);
    this.writeProbe = undefined;
  }

  private async commitAppends(ops: AppendOp[]): Promise<AppendEventResult[]> {
    const tails = new Map<number, number>();
    const results = await this.track(() => this.sql.begin((tx) => writeAppendBatch(tx, ops, tails, (written) => this.notify(tx, written))));
    this.writesWork();
    this.observers.committedBatch(ops.length);
    if (tails.size > 0) for (const listener of this.listeners) listener(tails);
    return results;
  }

  async appendEvent(streamId: number, request: CapturedRequest, options?: AppendEventOptions): Promise<AppendEventResult> {
    if (this.closing) throw new Error("store is closing");
    if (!options?.verify) return this.submitAppend(streamId, request, options);
    // Checked here, before the batch: the commit's turn is the database's, not this thread's.
    const check = checkAppend(options.verify, request);
    if (check.refused) return check.result;
    const { verdict } = check;
    const result = await this.submitAppend(
      streamId,
      { ...request, annotations: { ...request.annotations, verification: verdict } },
      options,
    );
    return reportVerdict(result, verdict);
  }

  private submitAppend(streamId: number, request: CapturedRequest, options: AppendEventOptions | undefined): Promise<AppendEventResult> {
    return this.appends.submit(options?.dedupe ? { streamId, request, dedupe: options.dedupe } : { streamId, request });
  }

  async findDelivery(streamId: number, key: string): Promise<DeliveryRecord | undefined> {
    const [row] = await this.track(
      () => this.sql<DeliveryRecord[]>`
        SELECT seq, event_id AS id, deliveries, first_at AS "firstAt" FROM dedupe WHERE stream_id = ${streamId} AND key = ${key}`,
    );
    return row;
  }

  createInbox(inbox: NewInbox): Promise<Inbox> {
    return this.inboxes.createInbox(inbox);
  }

  getInbox(id: string): Promise<StoredInbox | undefined> {
    return this.inboxes.getInbox(id);
  }

  listInboxes(): Promise<Inbox[]> {
    return this.inboxes.listInboxes();
  }

  updateInbox(id: string, changes: InboxChanges): Promise<Inbox | undefined> {
    return this.inboxes.updateInbox(id, changes);
  }

  async deleteInbox(id: string): Promise<boolean> {
    this.inboxes.forget(id);
    const streamId = await this.track(() =>
      this.sql.begin(async (tx) => {
        const now = Date.now();
        const [inbox] = await tx<Array<{ streamId: number }>>`
          UPDATE inboxes SET deleted_at = ${now} WHERE id = ${id} AND deleted_at IS NULL RETURNING stream_id AS "streamId"`;
        if (!inbox) return undefined;
        await tx`UPDATE streams SET deleted_at = ${now} WHERE id = ${inbox.streamId}`;
        await tx`DELETE FROM consumers WHERE stream_id = ${inbox.streamId}`;
        // Wake the inbox's live readers in every process (sent on commit), so they end now.
        await this.notify(tx, new Map([[inbox.streamId, WAKE_ALL]]));
        return inbox.streamId;
      }),
    );
    if (streamId === undefined) return false;
    const tails = new Map([[streamId, WAKE_ALL]]);
    for (const listener of this.listeners) listener(tails);
    return true;
  }

  getStream(name: string): Promise<StreamInfo | undefined> {
    return this.reads.getStream(name);
  }

  getStreamById(id: number): Promise<StreamInfo | undefined> {
    return this.reads.getStreamById(id);
  }

  getTails(streamIds: number[]): Promise<Map<number, number>> {
    return this.reads.getTails(streamIds);
  }

  readMessages(streamId: number, afterSeq: number, limits: ReadLimits): Promise<StoredMessage[]> {
    return this.reads.readMessages(streamId, afterSeq, limits);
  }

  readMessage(streamId: number, seq: number): Promise<StoredMessage | undefined> {
    return this.reads.readMessage(streamId, seq);
  }

  readSnapshotPage(streamId: number, request: SnapshotPageRequest): Promise<SnapshotPage> {
    return this.track(() => readSnapshotPage(this.sql, streamId, request));
  }

  messageTime(streamId: number, seq: number): Promise<number | undefined> {
    return this.reads.messageTime(streamId, seq);
  }

  getConsumer(streamId: number, name: string): Promise<Consumer | undefined> {
    return this.consumers.getConsumer(streamId, name);
  }

  listConsumers(streamId: number): Promise<Consumer[]> {
    return this.consumers.listConsumers(streamId);
  }

  ensureConsumer(streamId: number, name: string, startSeq: number): Promise<Consumer> {
    return this.consumers.ensureConsumer(streamId, name, startSeq);
  }

  ackConsumer(streamId: number, name: string, seq: number): Promise<Consumer> {
    return this.consumers.ackConsumer(streamId, name, seq);
  }

  deleteConsumer(streamId: number, name: string): Promise<boolean> {
    return this.consumers.deleteConsumer(streamId, name);
  }

  markConsumerSeen(streamId: number, name: string): Promise<void> {
    return this.consumers.markConsumerSeen(streamId, name);
  }

  private pruning = false;

  /** One run of the periodic work: retention, then compaction; a run still going skips the next tick. */
  private async pruneAndCompact(): Promise<void> {
    if (this.pruning) return;
    this.pruning = true;
    try {
      this.observers.pruned(await this.prune());
      await this.compactNow();
    } catch {
      // The database is down or busy: the next tick tries again.
    } finally {
      this.pruning = false;
    }
  }

  /** Compaction steps (pg-compaction.ts), each a short transaction, until no work is left. */
  compactNow(): Promise<number> {
    return this.compaction.run((messages) => this.observers.compacted(messages));
  }

  setCompactionPolicy(streamId: number, policy: CompactionPolicy | null): Promise<boolean> {
    return this.compaction.setPolicy(streamId, policy);
  }

  /** Retention and deleted inboxes' events, a chunk per pass; one process at a time. */
  async prune(): Promise<number> {
    await this.general.expire();
    return pruneHeads(this.sql);
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  observe(observer: StoreObserver): void {
    this.observers.add(observer);
  }

  /** The database answers, and writes are not failing (see writesFailing). */
  isHealthy(): boolean {
    return this.healthy && this.writeProbe === undefined && !this.closing;
  }

  isFailure(error: unknown): boolean {
    return this.closing !== undefined || isDatabaseTrouble(error);
  }

  /**
   * Asks the database on a connection of its own, so the answer is about the database
   * now, not about the state of the pool after an outage; also brings `isHealthy` back
   * once it answers again.
   */
  async ping(): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.pingSql`SELECT 1`;
        this.healthy = true;
        return true;
      } catch (error) {
        // Its connection may have died with the old server: it fails once and is
        // replaced, which says nothing about the database now, so that is retried once.
        const deadConnection = DEAD_CONNECTION_CODES.has((error as { code?: string }).code ?? "");
        if (attempt >= 2 || !deadConnection) return false;
      }
    }
  }

  /** An advisory lock per schema and name, on a connection of its own (see leader-lock.ts); the caller stops it. */
  leadership(name: string, onError?: (error: unknown) => void): Leadership {
    return new LeaderLock({ url: this.url, name, ...(this.schema ? { schema: this.schema } : {}), ...(onError ? { onError } : {}) });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pruneTimer);
      this.writesWork();
      await this.appends.idle();
      await this.sql.end({ timeout: 5 });
      await this.pingSql.end({ timeout: 1 });
    })();
    return this.closing;
  }
}
