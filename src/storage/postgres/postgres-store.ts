/*
 * The scale-out store: any number of tailhook processes share one PostgreSQL
 * database. Appends are group-committed per process; a stream's row lock hands out
 * sequence numbers, so they stay gapless across processes and commit in order (no
 * reader sees seq n+1 before seq n). After a commit, NOTIFY tells the other
 * processes' readers — only as a hint: readers also re-check on a timer.
 */
import { ageCutoff, deletedTarget, planHeadDrops, retainedTarget, retentionOf, type HeadTarget } from "../../core/retention.js";
import { inboxStreamName } from "../../core/stream-names.js";
import postgres from "postgres";
import { encodeEventMeta } from "../../core/capture.js";
import type { CapturedRequest, Consumer, Inbox, StoredInbox, StoredMessage, StreamInfo } from "../../core/types.js";
import type { AppendEventOptions, AppendEventResult, CommitListener, DeliveryRecord, InboxChanges, Leadership, NewInbox, ReadLimits, Store } from "../store.js";
import { toInbox, withoutToken, type InboxRow } from "../rows.js";
import { GroupCommit } from "./group-commit.js";
import { StoreObservers, type StoreObserver } from "../store-observer.js";
import { LeaderLock } from "./leader-lock.js";
import { PgGeneralStreams } from "./pg-general-streams.js";
import { checkServerDurability, DURABLE_SESSION_PARAMETERS, readServerDurability, type ServerDurability } from "./durability.js";
import { readSegments, SegmentCache, spansSegments } from "../segments.js";
import { migrate } from "./migrations.js";
import { WAKE_ALL } from "../../core/stream-rules.js";
import { DeliveryWrites, type SeenDelivery } from "./dedupe-writes.js";
import { decodeCommitNotice, encodeCommitNotice } from "./commit-notify.js";
import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";

export interface PostgresStoreOptions {
  url: string;
  /** A schema of its own (created if missing): lets tests and tenants share one database. */
  schema?: string;
  poolSize?: number;
  pruneIntervalMs?: number;
}


const INBOX_CACHE_MS = 1000;
const INBOX_CACHE_SIZE = 10_000;
/** The `postgres` client's codes for a connection that was already closed when used. */
const DEAD_CONNECTION_CODES = new Set(["CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED"]);
const PRUNE_ROWS = 2000;
/* While writes fail, a tiny write every WRITE_PROBE_MS finds out when they work again, traffic or not. */
const WRITE_PROBE_MS = 1000;

/*
 * Errors that say the database cannot take writes now: read-only (25006), out of disk
 * or memory (53), I/O and system errors (58), shutting down (57), connection trouble
 * (08), internal errors (XX) — as opposed to a refused request (a constraint, bad input).
 */
function isWriteTrouble(error: unknown): boolean {
  if (!(error instanceof postgres.PostgresError)) return false;
  return error.code === "25006" || ["53", "58", "57", "08", "XX"].includes(error.code.slice(0, 2));
}

interface AppendOp {
  streamId: number;
  request: CapturedRequest;
  dedupe?: { key: string; windowMs: number };
}

/*
 * Workaround for a known bug of the `postgres` client (porsager/postgres #1066, #1154,
 * #1208; unreleased fixes): when the server goes away under load, a deferred write can
 * run after its socket was dropped and throw "Cannot read properties of null (reading
 * 'write')" from a timer, which would kill the process. That write belongs to a
 * connection already being torn down (its queries fail and are retried by our callers),
 * so only this exact error from that file is swallowed; anything else still crashes.
 */
let clientBugGuardInstalled = false;
function guardAgainstClientWriteBug(): void {
  if (clientBugGuardInstalled) return;
  clientBugGuardInstalled = true;
  process.on("uncaughtException", (error) => {
    const isClientBug =
      error instanceof TypeError &&
      error.message === "Cannot read properties of null (reading 'write')" &&
      /postgres[\\/]src[\\/]connection\.js/.test(error.stack ?? "");
    if (isClientBug) return;
    throw error;
  });
}

export class PostgresStore implements Store {
  private readonly listeners: CommitListener[] = [];
  private readonly observers = new StoreObservers();
  private readonly inboxCache = new LRUCache<string, StoredInbox>({ max: INBOX_CACHE_SIZE, ttl: INBOX_CACHE_MS });
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
  }

  /** fsync and synchronous_commit as one of the pool's sessions sees them (checked at open). */
  durabilitySettings(): Promise<ServerDurability> {
    return readServerDurability(this.sql);
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    guardAgainstClientWriteBug();
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
      store.pruneTimer = setInterval(() => void store.prune().then((rows) => store.observers.pruned(rows)).catch(() => undefined), options.pruneIntervalMs ?? 5000);
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
    const byStream = new Map<number, number[]>();
    ops.forEach((op, index) => {
      const indexes = byStream.get(op.streamId);
      if (indexes) indexes.push(index);
      else byStream.set(op.streamId, [index]);
    });
    // Lock streams in id order so two processes' batches cannot deadlock.
    const streamIds = [...byStream.keys()].sort((a, b) => a - b);
    const tails = new Map<number, number>();
    const results = await this.track(() =>
      this.sql.begin(async (tx) => {
        const seqs: Array<number | undefined> = new Array(ops.length);
        const out: AppendEventResult[] = new Array(ops.length);
        const deliveries = new DeliveryWrites();
        for (const streamId of streamIds) {
          const indexes = byStream.get(streamId)!;
          if (indexes.some((index) => ops[index]!.dedupe)) {
            await this.assignDeduped(tx, streamId, indexes, ops, seqs, out, deliveries, tails);
            continue;
          }
          const count = indexes.length;
          const [row] = await tx<Array<{ tailSeq: number }>>`
            UPDATE streams SET tail_seq = tail_seq + ${count}
            WHERE id = ${streamId} AND deleted_at IS NULL
            RETURNING tail_seq AS "tailSeq"`;
          if (row) tails.set(streamId, row.tailSeq);
          indexes.forEach((index, i) => {
            if (row) seqs[index] = row.tailSeq - count + 1 + i;
          });
        }
        const rows: Array<{ stream_id: number; seq: number; created_at: number; data: Buffer; meta: string }> = [];
        ops.forEach((op, index) => {
          if (out[index]) return;
          const seq = seqs[index];
          if (seq === undefined) {
            out[index] = { status: "not_found" };
            return;
          }
          const data = Buffer.from(op.request.body.buffer, op.request.body.byteOffset, op.request.body.byteLength);
          rows.push({ stream_id: op.streamId, seq, created_at: op.request.receivedAt, data, meta: encodeEventMeta(op.request) });
          out[index] = { status: "appended", seq };
        });
        if (rows.length > 0) {
          await tx`INSERT INTO messages ${tx(rows, "stream_id", "seq", "created_at", "data", "meta")}`;
          await this.notify(tx, tails);
        }
        await deliveries.write(tx);
        return out;
      }),
    );
    this.writesWork();
    this.observers.committedBatch(ops.length);
    if (tails.size > 0) for (const listener of this.listeners) listener(tails);
    return results;
  }

  /**
   * Seqs for one stream's ops when some carry a delivery id. The stream's row is locked
   * first, so another process appending to it waits for our commit and then sees our
   * dedupe rows (READ COMMITTED reads anew each statement): a delivery id is appended once.
   */
  private async assignDeduped(
    tx: postgres.TransactionSql,
    streamId: number,
    indexes: number[],
    ops: AppendOp[],
    seqs: Array<number | undefined>,
    out: AppendEventResult[],
    deliveries: DeliveryWrites,
    tails: Map<number, number>,
  ): Promise<void> {
    const [locked] = await tx<Array<{ tailSeq: number }>>`
      SELECT tail_seq AS "tailSeq" FROM streams WHERE id = ${streamId} AND deleted_at IS NULL FOR UPDATE`;
    if (!locked) return; // every op of the stream answers not_found
    const keys = [...new Set(indexes.flatMap((index) => ops[index]!.dedupe?.key ?? []))];
    const stored = await tx<Array<{ key: string; seq: number; id: string; firstAt: number }>>`
      SELECT key, seq, event_id AS id, first_at AS "firstAt" FROM dedupe WHERE stream_id = ${streamId} AND key IN ${tx(keys)}`;
    const known = new Map<string, SeenDelivery>(stored.map((row) => [row.key, row]));
    const now = Date.now();
    let tail = locked.tailSeq;
    for (const index of indexes) {
      const op = ops[index]!;
      const dedupe = op.dedupe;
      const seen = dedupe && known.get(dedupe.key);
      if (dedupe && seen && (seen.entry || now - seen.firstAt < dedupe.windowMs)) {
        deliveries.repeat(streamId, dedupe.key, seen);
        out[index] = { status: "duplicate", seq: seen.seq, id: seen.id };
        continue;
      }
      tail += 1;
      seqs[index] = tail;
      if (!dedupe) continue;
      if (seen) deliveries.replaceExpired(streamId, dedupe.key);
      const entry = { stream_id: streamId, key: dedupe.key, seq: tail, event_id: op.request.id, first_at: now, expires_at: now + dedupe.windowMs, deliveries: 1 };
      deliveries.add(entry);
      known.set(dedupe.key, { key: dedupe.key, seq: tail, id: op.request.id, firstAt: now, entry });
    }
    if (tail !== locked.tailSeq) {
      await tx`UPDATE streams SET tail_seq = ${tail} WHERE id = ${streamId}`;
      tails.set(streamId, tail);
    }
  }

  appendEvent(streamId: number, request: CapturedRequest, options?: AppendEventOptions): Promise<AppendEventResult> {
    if (this.closing) return Promise.reject(new Error("store is closing"));
    return this.appends.submit(options?.dedupe ? { streamId, request, dedupe: options.dedupe } : { streamId, request });
  }

  async findDelivery(streamId: number, key: string): Promise<DeliveryRecord | undefined> {
    const [row] = await this.track(
      () => this.sql<DeliveryRecord[]>`
        SELECT seq, event_id AS id, deliveries, first_at AS "firstAt" FROM dedupe WHERE stream_id = ${streamId} AND key = ${key}`,
    );
    return row;
  }

  async createInbox(inbox: NewInbox): Promise<Inbox> {
    const now = Date.now();
    const streamId = await this.track(() =>
      this.sql.begin(async (tx) => {
        const [stream] = await tx<Array<{ id: number }>>`
          INSERT INTO streams (name, content_type, created_at) VALUES (${inboxStreamName(inbox.id)}, 'application/json', ${now})
          RETURNING id`;
        await tx`
          INSERT INTO inboxes (id, name, stream_id, token_hash, settings, created_at)
          VALUES (${inbox.id}, ${inbox.name}, ${stream!.id}, ${inbox.tokenHash}, ${JSON.stringify(inbox.settings)}, ${now})`;
        return stream!.id;
      }),
    );
    return { id: inbox.id, name: inbox.name, streamId, settings: inbox.settings, createdAt: now };
  }

  async getInbox(id: string): Promise<StoredInbox | undefined> {
    // Other processes may change an inbox: cache it only briefly.
    const cached = this.inboxCache.get(id);
    if (cached) return cached;
    const [row] = await this.track(
      () => this.sql<InboxRow[]>`
        SELECT id, name, stream_id AS "streamId", token_hash AS "tokenHash", settings, created_at AS "createdAt"
        FROM inboxes WHERE id = ${id} AND deleted_at IS NULL`,
    );
    if (!row) {
      this.inboxCache.delete(id);
      return undefined;
    }
    const inbox = toInbox(row);
    this.inboxCache.set(id, inbox);
    return inbox;
  }

  async listInboxes(): Promise<Inbox[]> {
    const rows = await this.track(
      () => this.sql<InboxRow[]>`
        SELECT id, name, stream_id AS "streamId", token_hash AS "tokenHash", settings, created_at AS "createdAt"
        FROM inboxes WHERE deleted_at IS NULL ORDER BY created_at, id`,
    );
    return rows.map((row) => withoutToken(toInbox(row)));
  }

  async updateInbox(id: string, changes: InboxChanges): Promise<Inbox | undefined> {
    this.inboxCache.delete(id);
    const [row] = await this.track(
      () => this.sql<Array<{ id: string }>>`
        UPDATE inboxes SET
          name = CASE WHEN ${changes.name !== undefined} THEN ${changes.name ?? null} ELSE name END,
          settings = COALESCE(${changes.settings === undefined ? null : JSON.stringify(changes.settings)}, settings)
        WHERE id = ${id} AND deleted_at IS NULL RETURNING id`,
    );
    if (!row) return undefined;
    this.inboxCache.delete(id);
    const inbox = await this.getInbox(id);
    return inbox && withoutToken(inbox);
  }

  async deleteInbox(id: string): Promise<boolean> {
    this.inboxCache.delete(id);
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

  private streamColumns() {
    return this.sql`id, name, content_type AS "contentType", tail_seq AS "tailSeq", first_seq AS "firstSeq", closed, created_at AS "createdAt",
      soft_deleted AS "softDeleted", ttl_seconds AS "ttlSeconds", expires_at AS "expiresAt", touched_at AS "touchedAt",
      forked_from AS "forkedFrom", fork_seq AS "forkSeq"`;
  }

  async getStream(name: string): Promise<StreamInfo | undefined> {
    const [row] = await this.track(
      () => this.sql<StreamInfo[]>`SELECT ${this.streamColumns()} FROM streams WHERE name = ${name} AND deleted_at IS NULL`,
    );
    return row;
  }

  async getStreamById(id: number): Promise<StreamInfo | undefined> {
    const [row] = await this.track(
      () => this.sql<StreamInfo[]>`SELECT ${this.streamColumns()} FROM streams WHERE id = ${id} AND deleted_at IS NULL`,
    );
    return row;
  }

  /** Current tails of these streams: the fallback for notifications that got lost. */
  async getTails(streamIds: number[]): Promise<Map<number, number>> {
    if (streamIds.length === 0) return new Map();
    const rows = await this.track(
      () => this.sql<Array<{ id: number; tailSeq: number }>>`
        SELECT id, CASE WHEN deleted_at IS NULL AND NOT soft_deleted THEN tail_seq ELSE ${String(WAKE_ALL)}::bigint END AS "tailSeq"
        FROM streams WHERE id IN ${this.sql(streamIds)}`,
    );
    // A removed stream reads as "wake everyone", so a lost NOTIFY of a delete still ends its readers.
    return new Map(rows.map((row) => [row.id, row.tailSeq]));
  }

  async readMessages(streamId: number, afterSeq: number, limits: ReadLimits): Promise<StoredMessage[]> {
    const segments = await this.segments.get(streamId);
    // A read of one segment is one statement, hence one snapshot. A fork's read spans
    // several: they share one REPEATABLE READ transaction, so the page is one snapshot too.
    if (!spansSegments(segments, afterSeq)) return this.track(() => readSegments(segments, afterSeq, limits, (...range) => this.readRange(this.sql, ...range)));
    return this.track(() =>
      this.sql.begin("isolation level repeatable read read only", (tx) =>
        readSegments(segments, afterSeq, limits, (...range) => this.readRange(tx, ...range)),
      ),
    );
  }

  /**
   * One stream's own rows in (from, toSeq]. The running byte total stops the page in
   * the database, so a page of huge bodies is never fetched whole; the first message always comes.
   */
  private readRange(sql: postgres.Sql | postgres.TransactionSql, owner: number, from: number, toSeq: number, remaining: ReadLimits) {
    return sql<StoredMessage[]>`
      SELECT seq, "createdAt", data, meta FROM (
        SELECT seq, created_at AS "createdAt", data, meta,
               sum(octet_length(data)) OVER (ORDER BY seq) - octet_length(data) AS before
        FROM messages WHERE stream_id = ${owner} AND seq > ${from} AND seq <= ${toSeq}
        ORDER BY seq LIMIT ${remaining.maxMessages}
      ) page
      WHERE before = 0 OR before < ${remaining.maxBytes} ORDER BY seq`;
  }

  async readMessage(streamId: number, seq: number): Promise<StoredMessage | undefined> {
    const owner = await this.segments.ownerOf(streamId, seq);
    const [row] = await this.track(
      () => this.sql<StoredMessage[]>`
        SELECT seq, created_at AS "createdAt", data, meta FROM messages WHERE stream_id = ${owner} AND seq = ${seq}`,
    );
    return row;
  }

  private consumerColumns() {
    return this.sql`stream_id AS "streamId", name, committed_seq AS "committedSeq", created_at AS "createdAt", last_ack_at AS "lastAckAt", last_seen_at AS "lastSeenAt"`;
  }

  async getConsumer(streamId: number, name: string): Promise<Consumer | undefined> {
    const [row] = await this.track(
      () => this.sql<Consumer[]>`SELECT ${this.consumerColumns()} FROM consumers WHERE stream_id = ${streamId} AND name = ${name}`,
    );
    return row;
  }

  async listConsumers(streamId: number): Promise<Consumer[]> {
    return this.track(
      () => this.sql<Consumer[]>`SELECT ${this.consumerColumns()} FROM consumers WHERE stream_id = ${streamId} ORDER BY name`,
    );
  }

  async ensureConsumer(streamId: number, name: string, startSeq: number): Promise<Consumer> {
    await this.track(
      () => this.sql`
        INSERT INTO consumers (stream_id, name, committed_seq, created_at) VALUES (${streamId}, ${name}, ${startSeq}, ${Date.now()})
        ON CONFLICT DO NOTHING`,
    );
    return (await this.getConsumer(streamId, name))!;
  }

  async ackConsumer(streamId: number, name: string, seq: number): Promise<Consumer> {
    const now = Date.now();
    const [row] = await this.track(
      () => this.sql<Consumer[]>`
        INSERT INTO consumers (stream_id, name, committed_seq, created_at, last_ack_at) VALUES (${streamId}, ${name}, ${seq}, ${now}, ${now})
        ON CONFLICT (stream_id, name) DO UPDATE
          SET committed_seq = GREATEST(consumers.committed_seq, EXCLUDED.committed_seq), last_ack_at = EXCLUDED.last_ack_at
        RETURNING ${this.consumerColumns()}`,
    );
    return row!;
  }

  async deleteConsumer(streamId: number, name: string): Promise<boolean> {
    const rows = await this.track(() => this.sql`DELETE FROM consumers WHERE stream_id = ${streamId} AND name = ${name} RETURNING name`);
    return rows.length > 0;
  }

  async markConsumerSeen(streamId: number, name: string): Promise<void> {
    await this.track(
      () => this.sql`UPDATE consumers SET last_seen_at = ${Date.now()} WHERE stream_id = ${streamId} AND name = ${name}`,
    );
  }

  /** Retention and deleted inboxes' events, a chunk per pass; one process at a time. */
  async prune(): Promise<number> {
    await this.general.expire();
    return this.sql.begin(async (tx) => {
      const [lock] = await tx<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(7442292) AS locked`;
      if (!lock?.locked) return 0;
      const now = Date.now();
      const inboxes = await tx<Array<{ streamId: number; settings: string; firstSeq: number; tailSeq: number }>>`
        SELECT i.stream_id AS "streamId", i.settings, s.first_seq AS "firstSeq", s.tail_seq AS "tailSeq"
        FROM inboxes i JOIN streams s ON s.id = i.stream_id
        WHERE i.deleted_at IS NULL AND i.settings LIKE '%"retention"%'`;
      const targets: HeadTarget[] = [];
      for (const inbox of inboxes) {
        const stream = { ...inbox, retention: retentionOf(inbox.settings) };
        const cutoff = ageCutoff(stream.retention, now);
        const [young] = cutoff === undefined ? [] : await tx<Array<{ seq: number | null }>>`
          SELECT min(seq) AS seq FROM messages WHERE stream_id = ${inbox.streamId} AND created_at >= ${cutoff}`;
        targets.push(retainedTarget(stream, young?.seq));
      }
      const deleted = await tx<Array<{ id: number; firstSeq: number; tailSeq: number }>>`
        SELECT id, first_seq AS "firstSeq", tail_seq AS "tailSeq" FROM streams WHERE deleted_at IS NOT NULL AND first_seq <= tail_seq`;
      targets.push(...deleted.map(deletedTarget));
      const plan = planHeadDrops(targets, PRUNE_ROWS);
      let step = plan.next(0);
      while (!step.done) {
        const { streamId, fromSeq, stopSeq } = step.value;
        const removed = await tx`DELETE FROM messages WHERE stream_id = ${streamId} AND seq >= ${fromSeq} AND seq < ${stopSeq}`;
        await tx`UPDATE streams SET first_seq = GREATEST(first_seq, ${stopSeq}) WHERE id = ${streamId}`;
        step = plan.next(removed.count);
      }
      let budget = step.value;
      if (budget > 0) {
        const expired = await tx`
          DELETE FROM dedupe WHERE ctid IN (SELECT ctid FROM dedupe WHERE expires_at <= ${now} LIMIT ${budget})`;
        budget -= expired.count;
      }
      return PRUNE_ROWS - budget;
    });
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
