/*
 * General (protocol) streams on PostgreSQL. Each write is one transaction that locks
 * the stream's row (FOR UPDATE) before deciding, so the checks in stream-rules.ts
 * cannot race with another process's write to the same stream; two processes creating
 * one name race on the unique index of live names, and the loser retries once and
 * then sees the winner's stream. After the commit, local readers are told and the
 * other processes get a NOTIFY, as for webhook appends.
 */
import { INBOX_STREAM_PATTERN } from "../../core/stream-names.js";
import type postgres from "postgres";
import type { StreamInfo } from "../../core/types.js";
import type { CommitListener } from "../store.js";
import {
  isExpired,
  TouchThrottle,
  type AppendRequest,
  type AppendResult,
  type CreateStreamRequest,
  type CreateStreamResult,
  type DeleteStreamResult,
} from "../../core/streams.js";
import { type GeneralStreams } from "../streams.js";
import {
  DEFAULT_CONTENT_TYPE,
  forkAnchor,
  forkNeedsNextMessage,
  forkRequestKey,
  judgeAppend,
  planFork,
  producerKey,
  sameConfig,
  WAKE_ALL,
  type ForkPlan,
  type ProducerState,
  type WriterStream,
} from "../../core/stream-rules.js";
import type { SegmentCache } from "../segments.js";
import { planStateWrite } from "../../core/state/key-index.js";
import { writeKeyIndex } from "./pg-state.js";

type Tx = postgres.TransactionSql;

export interface PgGeneralStreamsDeps {
  sql: postgres.Sql;
  /** Runs a query, tracking the database's health. */
  track: <T>(query: () => Promise<T>) => Promise<T>;
  /** Tells local readers and other processes about new tails, after the commit. */
  publish: (tails: Map<number, number>, tx: Tx) => Promise<void>;
  listeners: CommitListener[];
  segments: SegmentCache;
}

const UNIQUE_VIOLATION = "23505";

export class PgGeneralStreams implements GeneralStreams {
  private readonly touches = new TouchThrottle();

  constructor(private readonly deps: PgGeneralStreamsDeps) {}

  private columns(tx: Tx | postgres.Sql) {
    return tx`id, name, content_type AS "contentType", tail_seq AS "tailSeq", first_seq AS "firstSeq", closed, created_at AS "createdAt",
      soft_deleted AS "softDeleted", ttl_seconds AS "ttlSeconds", expires_at AS "expiresAt", touched_at AS "touchedAt",
      forked_from AS "forkedFrom", fork_seq AS "forkSeq", last_stream_seq AS "lastStreamSeq", closed_by AS "closedBy",
      fork_request AS "forkRequest", state_protocol AS "stateProtocol", key_frame AS "keyFrame", key_frame_version AS "keyFrameVersion",
      horizon_seq AS "horizonSeq", compaction::json AS compaction`;
  }

  /** Runs `work` in a transaction, then announces the tails it changed. */
  private async write<T>(work: (tx: Tx, tails: Map<number, number>) => Promise<T>): Promise<T> {
    const tails = new Map<number, number>();
    const result = await this.deps.track(() =>
      this.deps.sql.begin(async (tx) => {
        const value = await work(tx, tails);
        if (tails.size > 0) await this.deps.publish(tails, tx);
        return value;
      }),
    );
    if (tails.size > 0) for (const listener of this.deps.listeners) listener(tails);
    return result as T;
  }

  private async byId(tx: Tx, id: number, lock = false): Promise<WriterStream> {
    const [row] = lock
      ? await tx<WriterStream[]>`SELECT ${this.columns(tx)} FROM streams WHERE id = ${id} FOR UPDATE`
      : await tx<WriterStream[]>`SELECT ${this.columns(tx)} FROM streams WHERE id = ${id}`;
    return row!;
  }

  /** Soft-deletes while forks read the data, else removes, then cascades to soft-deleted sources. */
  private async retire(tx: Tx, stream: StreamInfo, now: number, tails: Map<number, number>): Promise<void> {
    let current: StreamInfo | undefined = stream;
    while (current) {
      const [forks] = await tx<Array<{ n: number }>>`
        SELECT count(*)::int AS n FROM streams WHERE forked_from = ${current.id} AND deleted_at IS NULL`;
      if (forks!.n > 0) {
        await tx`UPDATE streams SET soft_deleted = true WHERE id = ${current.id}`;
        return;
      }
      await tx`UPDATE streams SET deleted_at = ${now} WHERE id = ${current.id}`;
      await tx`DELETE FROM producers WHERE stream_id = ${current.id}`;
      tails.set(current.id, WAKE_ALL);
      // Locked before its forks are counted: two forks deleted at once would otherwise
      // each still see the other and leave the source soft-deleted with no forks.
      const parent: WriterStream | undefined = current.forkedFrom === null ? undefined : await this.byId(tx, current.forkedFrom, true);
      current = parent?.softDeleted ? parent : undefined;
    }
  }

  /** The live stream with this name, locked; an expired one is retired on the way. */
  private async live(tx: Tx, name: string, now: number, tails: Map<number, number>): Promise<WriterStream | undefined> {
    const [stream] = await tx<WriterStream[]>`
      SELECT ${this.columns(tx)} FROM streams WHERE name = ${name} AND deleted_at IS NULL FOR UPDATE`;
    if (stream && !stream.softDeleted && isExpired(stream, now)) {
      await this.retire(tx, stream, now, tails);
      return undefined;
    }
    return stream;
  }

  private async insertMessages(tx: Tx, streamId: number, afterSeq: number, messages: Buffer[], now: number): Promise<void> {
    if (messages.length === 0) return;
    const rows = messages.map((data, index) => ({ stream_id: streamId, seq: afterSeq + index + 1, created_at: now, data }));
    await tx`INSERT INTO messages ${tx(rows, "stream_id", "seq", "created_at", "data")}`;
  }

  private async messageData(tx: Tx, stream: StreamInfo, seq: number): Promise<Buffer | undefined> {
    const owner = await this.deps.segments.ownerOf(stream.id, seq);
    const [row] = await tx<Array<{ data: Buffer }>>`SELECT data FROM messages WHERE stream_id = ${owner} AND seq = ${seq}`;
    return row?.data;
  }

  private async planForkIn(tx: Tx, request: CreateStreamRequest, now: number, tails: Map<number, number>) {
    const fork = request.fork!;
    const source = await this.live(tx, fork.source, now, tails);
    if (!source) return { result: { status: "source_not_found" } as CreateStreamResult };
    const next = forkNeedsNextMessage(fork, source) ? await this.messageData(tx, source, forkAnchor(fork, source) + 1) : undefined;
    const plan = planFork(request, source, next);
    return "status" in plan ? { result: plan } : { plan, sourceId: source.id };
  }

  private async createOnce(request: CreateStreamRequest): Promise<CreateStreamResult> {
    return this.write(async (tx, tails) => {
      const now = Date.now();
      const existing = await this.live(tx, request.name, now, tails);
      if (existing) {
        if (existing.softDeleted) return { status: "conflict", reason: "a deleted stream with live forks holds this name" };
        return sameConfig(existing, request)
          ? { status: "exists", stream: existing }
          : { status: "conflict", reason: "the stream exists with a different configuration" };
      }
      let plan: ForkPlan | undefined;
      let sourceId: number | null = null;
      if (request.fork) {
        const planned = await this.planForkIn(tx, request, now, tails);
        if ("result" in planned) return planned.result!;
        plan = planned.plan;
        sourceId = planned.sourceId;
      }
      const own = [...(plan?.partial ? [plan.partial] : []), ...request.messages];
      const baseSeq = plan?.forkSeq ?? 0;
      const statePlan = planStateWrite(request.stateProtocol, own, baseSeq);
      if (statePlan.status !== "write") return statePlan;
      const [created] = await tx<Array<{ id: number }>>`
        INSERT INTO streams (name, content_type, tail_seq, closed, created_at, ttl_seconds, expires_at, touched_at,
          forked_from, fork_seq, fork_request, state_protocol)
        VALUES (${request.name}, ${plan?.contentType ?? request.contentType ?? DEFAULT_CONTENT_TYPE}, ${baseSeq + own.length},
          ${request.closed}, ${now}, ${plan ? plan.ttlSeconds : request.ttlSeconds}, ${plan ? plan.expiresAt : request.expiresAt},
          ${now}, ${sourceId}, ${plan ? plan.forkSeq : null}, ${forkRequestKey(request)}, ${request.stateProtocol})
        RETURNING id`;
      await this.insertMessages(tx, created!.id, baseSeq, own, now);
      if (statePlan.index) await writeKeyIndex(tx, created!.id, statePlan.index);
      tails.set(created!.id, baseSeq + own.length);
      return { status: "created", stream: await this.byId(tx, created!.id) };
    });
  }

  async createStream(request: CreateStreamRequest): Promise<CreateStreamResult> {
    try {
      return await this.createOnce(request);
    } catch (error) {
      // Another process created this name between our check and our insert: ask again.
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) return this.createOnce(request);
      throw error;
    }
  }

  appendStream(request: AppendRequest): Promise<AppendResult> {
    return this.write(async (tx, tails) => {
      const now = Date.now();
      const stream = await this.live(tx, request.name, now, tails);
      if (!stream) return { status: "not_found" };
      if (stream.softDeleted) return { status: "gone" };
      const producer = request.producer;
      const [state] = producer
        ? await tx<ProducerState[]>`
            SELECT epoch, last_seq AS "lastSeq" FROM producers WHERE stream_id = ${stream.id} AND producer_id = ${producer.id}`
        : [];
      const verdict = judgeAppend(stream, request, state);
      if (verdict !== "write") return verdict;
      const statePlan = planStateWrite(stream.stateProtocol, request.messages, stream.tailSeq);
      if (statePlan.status !== "write") return statePlan;
      await this.insertMessages(tx, stream.id, stream.tailSeq, request.messages, now);
      if (statePlan.index) await writeKeyIndex(tx, stream.id, statePlan.index);
      const tailSeq = stream.tailSeq + request.messages.length;
      await tx`
        UPDATE streams SET tail_seq = ${tailSeq}, closed = ${request.close || stream.closed}, touched_at = ${now},
          last_stream_seq = COALESCE(${request.streamSeq}, last_stream_seq),
          closed_by = COALESCE(${request.close && producer ? producerKey(producer) : null}, closed_by)
        WHERE id = ${stream.id}`;
      if (producer) {
        await tx`
          INSERT INTO producers (stream_id, producer_id, epoch, last_seq, updated_at)
          VALUES (${stream.id}, ${producer.id}, ${producer.epoch}, ${producer.seq}, ${now})
          ON CONFLICT (stream_id, producer_id) DO UPDATE
            SET epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq, updated_at = EXCLUDED.updated_at`;
      }
      if (request.messages.length > 0 || request.close) tails.set(stream.id, request.close ? WAKE_ALL : tailSeq);
      return { status: "appended", stream: await this.byId(tx, stream.id), producerSeq: producer?.seq ?? null };
    });
  }

  deleteStream(name: string): Promise<DeleteStreamResult> {
    return this.write(async (tx, tails) => {
      const now = Date.now();
      const stream = await this.live(tx, name, now, tails);
      if (!stream) return { status: "not_found" };
      if (stream.softDeleted) return { status: "gone" };
      await this.retire(tx, stream, now, tails);
      tails.set(stream.id, WAKE_ALL);
      return { status: "deleted" };
    });
  }

  /** Retires streams past their TTL or expiry (called by the store's prune pass). */
  expire(): Promise<number> {
    return this.write(async (tx, tails) => {
      const now = Date.now();
      const expired = await tx<Array<{ id: number }>>`
        SELECT id FROM streams WHERE deleted_at IS NULL AND NOT soft_deleted
          AND (expires_at <= ${now} OR (ttl_seconds IS NOT NULL AND COALESCE(touched_at, created_at) + ttl_seconds * 1000 <= ${now}))
        LIMIT 100 FOR UPDATE SKIP LOCKED`;
      for (const { id } of expired) await this.retire(tx, await this.byId(tx, id), now, tails);
      return expired.length;
    });
  }

  touchStream(stream: StreamInfo): void {
    const now = Date.now();
    if (!this.touches.due(stream, now)) return;
    void this.deps
      .track(() => this.deps.sql`UPDATE streams SET touched_at = GREATEST(COALESCE(touched_at, 0), ${now}) WHERE id = ${stream.id}`)
      .catch(() => undefined);
  }

  async listGeneralStreams(): Promise<StreamInfo[]> {
    const rows = await this.deps.track(
      () => this.deps.sql<StreamInfo[]>`
        SELECT ${this.columns(this.deps.sql)} FROM streams
        WHERE deleted_at IS NULL AND NOT soft_deleted AND name NOT LIKE ${INBOX_STREAM_PATTERN} ORDER BY name`,
    );
    const now = Date.now();
    return rows.filter((stream) => !isExpired(stream, now));
  }

  async listRecords(kind: string): Promise<Array<{ key: string; value: string }>> {
    return this.deps.track(
      () => this.deps.sql<Array<{ key: string; value: string }>>`SELECT key, value FROM records WHERE kind = ${kind} ORDER BY key`,
    );
  }

  async putRecord(kind: string, key: string, value: string | null): Promise<void> {
    await this.deps.track(() =>
      value === null
        ? this.deps.sql`DELETE FROM records WHERE kind = ${kind} AND key = ${key}`
        : this.deps.sql`
            INSERT INTO records (kind, key, value) VALUES (${kind}, ${key}, ${value})
            ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value`,
    );
  }
}
