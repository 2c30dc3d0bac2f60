/*
 * The writer thread's side of general streams: create (plain or fork), append (with
 * closure, Stream-Seq and idempotent producers), delete (soft while forks read the
 * data) and expiry. Each runs inside the batch's transaction, and this thread is the
 * only writer, so every check-then-write here is atomic.
 */
import { LRUCache } from "lru-cache";
import type { StreamInfo } from "../../core/types.js";
import {
  isExpired,
  type AppendRequest,
  type AppendResult,
  type CreateStreamRequest,
  type CreateStreamResult,
  type DeleteStreamResult,
} from "../../core/streams.js";
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
  type ProducerState,
  type WriterStream,
} from "../../core/stream-rules.js";
import { planStateWrite } from "../../core/state/key-index.js";
import type { Connection } from "./connection.js";
import { prepareStateWrites } from "./state-writes.js";
import { STREAM_COLUMNS, toStream, type StreamRow } from "./stream-rows.js";

interface WriterStreamRow extends StreamRow {
  lastStreamSeq: string | null;
  closedBy: string | null;
  forkRequest: string | null;
}

const COLUMNS = `${STREAM_COLUMNS}, last_stream_seq AS lastStreamSeq, closed_by AS closedBy, fork_request AS forkRequest`;

export function prepareStreamWrites(db: Connection, extended: () => Map<number, number>) {
  const sql = {
    live: db.prepare(`SELECT ${COLUMNS} FROM streams WHERE name = ? AND deleted_at IS NULL`),
    byId: db.prepare(`SELECT ${COLUMNS} FROM streams WHERE id = ?`),
    liveById: db.prepare(`SELECT ${COLUMNS} FROM streams WHERE id = ? AND deleted_at IS NULL`),
    insert: db.prepare(
      `INSERT INTO streams (name, content_type, tail_seq, closed, created_at, ttl_seconds, expires_at, touched_at,
         forked_from, fork_seq, fork_request, closed_by, state_protocol)
       VALUES (@name, @contentType, @tailSeq, @closed, @now, @ttlSeconds, @expiresAt, @now, @forkedFrom, @forkSeq, @forkRequest, @closedBy,
         @stateProtocol)`,
    ),
    insertMessage: db.prepare("INSERT INTO messages (stream_id, seq, created_at, data, meta) VALUES (?, ?, ?, ?, NULL)"),
    message: db.prepare("SELECT data, body_file AS bodyFile FROM messages WHERE stream_id = ? AND seq = ?"),
    saveState: db.prepare(
      `UPDATE streams SET tail_seq = @tailSeq, closed = @closed,
         touched_at = CASE WHEN @touchedAt IS NULL THEN touched_at ELSE MAX(COALESCE(touched_at, 0), @touchedAt) END,
         last_stream_seq = @lastStreamSeq, closed_by = @closedBy
       WHERE id = @id`,
    ),
    producer: db.prepare("SELECT epoch, last_seq AS lastSeq FROM producers WHERE stream_id = ? AND producer_id = ?"),
    saveProducer: db.prepare(
      `INSERT INTO producers (stream_id, producer_id, epoch, last_seq, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq, updated_at = excluded.updated_at`,
    ),
    forkCount: db.prepare("SELECT COUNT(*) AS n FROM streams WHERE forked_from = ? AND deleted_at IS NULL"),
    softDelete: db.prepare("UPDATE streams SET soft_deleted = 1 WHERE id = ?"),
    hardDelete: db.prepare("UPDATE streams SET deleted_at = ? WHERE id = ?"),
    dropProducers: db.prepare("DELETE FROM producers WHERE stream_id = ?"),
    touch: db.prepare("UPDATE streams SET touched_at = MAX(COALESCE(touched_at, 0), ?) WHERE id = ? AND deleted_at IS NULL"),
    expired: db.prepare(
      `SELECT id FROM streams WHERE deleted_at IS NULL AND soft_deleted = 0 AND
         (expires_at <= @now OR (ttl_seconds IS NOT NULL AND COALESCE(touched_at, created_at) + ttl_seconds * 1000 <= @now))
       LIMIT 100`,
    ),
    putRecord: db.prepare(
      "INSERT INTO records (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
    ),
    deleteRecord: db.prepare("DELETE FROM records WHERE kind = ? AND key = ?"),
  };
  const keyIndex = prepareStateWrites(db);

  /*
   * Live streams by name, as committed. This thread is the only writer, so an entry
   * stays true as long as every change to a stream updates or drops it; a rolled-back
   * batch drops them all (forget()). Appends then need no query to find their stream.
   * When full, the least recently used entry goes; a dirty one is written first, so
   * the row read back later is current.
   */
  const cache = new LRUCache<string, WriterStream>({
    max: 10_000,
    dispose: (stream, _name, reason) => {
      if (reason !== "evict") return;
      const pending = dirty.get(stream.id);
      if (pending) {
        save(pending);
        dirty.delete(stream.id);
      }
      cachedNames.delete(stream.id);
    },
  });
  const cachedNames = new Map<number, string>();
  /**
   * Streams appended to in the running batch, whose row is written once at its end
   * (flush()) instead of once per append: a batch of a thousand appends to one stream
   * updates its row once. Anything that reads or changes such a row first flushes it.
   */
  const dirty = new Map<number, WriterStream>();

  function save(stream: WriterStream): void {
    sql.saveState.run({
      id: stream.id,
      tailSeq: stream.tailSeq,
      closed: stream.closed ? 1 : 0,
      touchedAt: stream.touchedAt,
      lastStreamSeq: stream.lastStreamSeq,
      closedBy: stream.closedBy,
    });
  }

  function flush(): void {
    for (const stream of dirty.values()) save(stream);
    dirty.clear();
  }

  function remember(stream: WriterStream): WriterStream {
    cache.set(stream.name, stream);
    cachedNames.set(stream.id, stream.name);
    return stream;
  }

  function forgetId(id: number): void {
    const pending = dirty.get(id);
    if (pending) {
      save(pending);
      dirty.delete(id);
    }
    const name = cachedNames.get(id);
    if (name === undefined) return;
    cachedNames.delete(id);
    if (cache.get(name)?.id === id) cache.delete(name);
  }

  function forget(): void {
    cache.clear();
    cachedNames.clear();
    dirty.clear();
  }

  function read(row: WriterStreamRow | undefined): WriterStream | undefined {
    return row && { ...toStream(row), lastStreamSeq: row.lastStreamSeq, closedBy: row.closedBy, forkRequest: row.forkRequest };
  }

  function byId(id: number): WriterStream {
    return read(sql.byId.get(id) as WriterStreamRow)!;
  }

  /**
   * Takes a stream out of service: soft-deleted while forks still read its messages,
   * otherwise gone for good (its messages are pruned later). A fork's removal may leave
   * a soft-deleted source with no readers, which then goes too, up the chain.
   */
  function retire(stream: StreamInfo, now: number): void {
    let current: StreamInfo | undefined = stream;
    while (current) {
      const forks = (sql.forkCount.get(current.id) as { n: number }).n;
      forgetId(current.id);
      if (forks > 0) {
        sql.softDelete.run(current.id);
        break;
      }
      sql.hardDelete.run(now, current.id);
      sql.dropProducers.run(current.id);
      extended().set(current.id, WAKE_ALL);
      const parent: WriterStream | undefined = current.forkedFrom === null ? undefined : byId(current.forkedFrom);
      current = parent && parent.softDeleted ? parent : undefined;
    }
  }

  /** The live stream with this name; an expired one is retired on the way and counts as absent. */
  function live(name: string, now: number): WriterStream | undefined {
    const cached = cache.get(name);
    const found = cached ?? read(sql.live.get(name) as WriterStreamRow | undefined);
    const stream = found && !cached ? remember(found) : found;
    if (stream && !stream.softDeleted && isExpired(stream, now)) {
      retire(stream, now);
      return undefined;
    }
    return stream;
  }

  /** A message of `stream` by seq, following the fork chain for inherited seqs. */
  function messageData(stream: StreamInfo, seq: number): Buffer | undefined {
    let owner = stream;
    while (owner.forkedFrom !== null && owner.forkSeq !== null && seq <= owner.forkSeq) owner = byId(owner.forkedFrom);
    const row = sql.message.get(owner.id, seq) as { data: Buffer; bodyFile: number } | undefined;
    // Only inbox events have body files, and inbox streams are never forked (stream-write.ts refuses).
    if (row?.bodyFile === 1) throw new Error(`message ${seq} of stream ${owner.id} has its body in a file: not a fork source`);
    return row?.data;
  }

  function createStream(request: CreateStreamRequest, now: number): CreateStreamResult {
    const existing = live(request.name, now);
    if (existing) {
      if (existing.softDeleted) return { status: "conflict", reason: "a deleted stream with live forks holds this name" };
      return sameConfig(existing, request)
        ? { status: "exists", stream: existing }
        : { status: "conflict", reason: "the stream exists with a different configuration" };
    }
    let plan = undefined;
    let sourceId: number | null = null;
    if (request.fork) {
      const source = live(request.fork.source, now);
      if (!source) return { status: "source_not_found" };
      const next = forkNeedsNextMessage(request.fork, source) ? messageData(source, forkAnchor(request.fork, source) + 1) : undefined;
      const planned = planFork(request, source, next);
      if ("status" in planned) return planned;
      plan = planned;
      sourceId = source.id;
    }
    const own = [...(plan?.partial ? [plan.partial] : []), ...request.messages];
    const baseSeq = plan?.forkSeq ?? 0;
    const statePlan = planStateWrite(request.stateProtocol, own, baseSeq);
    if (statePlan.status !== "write") return statePlan;
    const id = Number(
      sql.insert.run({
        name: request.name,
        contentType: plan?.contentType ?? request.contentType ?? DEFAULT_CONTENT_TYPE,
        tailSeq: baseSeq + own.length,
        closed: request.closed ? 1 : 0,
        now,
        ttlSeconds: plan ? plan.ttlSeconds : request.ttlSeconds,
        expiresAt: plan ? plan.expiresAt : request.expiresAt,
        forkedFrom: sourceId,
        forkSeq: plan ? plan.forkSeq : null,
        forkRequest: forkRequestKey(request),
        closedBy: null,
        stateProtocol: request.stateProtocol,
      }).lastInsertRowid,
    );
    own.forEach((data, index) => sql.insertMessage.run(id, baseSeq + index + 1, now, data));
    if (statePlan.index) keyIndex.writeKeyIndex(id, statePlan.index);
    extended().set(id, baseSeq + own.length);
    return { status: "created", stream: remember(byId(id)) };
  }

  function appendStream(request: AppendRequest, now: number): AppendResult {
    const stream = live(request.name, now);
    if (!stream) return { status: "not_found" };
    if (stream.softDeleted) return { status: "gone" };
    const producer = request.producer;
    const state = producer ? (sql.producer.get(stream.id, producer.id) as ProducerState | undefined) : undefined;
    const verdict = judgeAppend(stream, request, state);
    if (verdict !== "write") return verdict;
    const statePlan = planStateWrite(stream.stateProtocol, request.messages, stream.tailSeq);
    if (statePlan.status !== "write") return statePlan;
    request.messages.forEach((data, index) => sql.insertMessage.run(stream.id, stream.tailSeq + index + 1, now, data));
    if (statePlan.index) keyIndex.writeKeyIndex(stream.id, statePlan.index);
    const tailSeq = stream.tailSeq + request.messages.length;
    if (producer) sql.saveProducer.run(stream.id, producer.id, producer.epoch, producer.seq, now);
    if (request.messages.length > 0 || request.close) extended().set(stream.id, request.close ? WAKE_ALL : tailSeq);
    const updated = remember({
      ...stream,
      tailSeq,
      closed: request.close,
      touchedAt: now,
      lastStreamSeq: request.streamSeq ?? stream.lastStreamSeq,
      closedBy: request.close && producer ? producerKey(producer) : stream.closedBy,
    });
    dirty.set(stream.id, updated);
    return { status: "appended", stream: updated, producerSeq: producer?.seq ?? null };
  }

  function deleteStream(name: string, now: number): DeleteStreamResult {
    const stream = live(name, now);
    if (!stream) return { status: "not_found" };
    if (stream.softDeleted) return { status: "gone" };
    retire(stream, now);
    extended().set(stream.id, WAKE_ALL);
    return { status: "deleted" };
  }

  /** A live stream by id, from the same cache: webhook appends address their inbox's stream by id. */
  function liveById(id: number): WriterStream | undefined {
    const name = cachedNames.get(id);
    const cached = name === undefined ? undefined : cache.get(name);
    if (cached && cached.id === id) return cached;
    const found = read(sql.liveById.get(id) as WriterStreamRow | undefined);
    return found && remember(found);
  }

  /** Moves a stream's tail after its messages were inserted; the row is written once, at flush(). */
  function extendTail(stream: WriterStream, tailSeq: number): void {
    dirty.set(stream.id, remember({ ...stream, tailSeq }));
    extended().set(stream.id, tailSeq);
  }

  return {
    createStream,
    appendStream,
    deleteStream,
    liveById,
    extendTail,
    /** Drops a stream from the cache (its pending row written first): after a change made outside this module. */
    forgetId,
    touch(streamIds: number[], now: number): void {
      for (const id of streamIds) {
        sql.touch.run(now, id);
        const name = cachedNames.get(id);
        const cached = name === undefined ? undefined : cache.get(name);
        if (!cached || cached.id !== id) continue;
        const touched = { ...cached, touchedAt: Math.max(cached.touchedAt ?? 0, now) };
        cache.set(touched.name, touched);
        if (dirty.has(id)) dirty.set(id, touched);
      }
    },
    forget,
    /** Writes the rows of the streams this batch appended to; call before the commit. */
    flush,
    /** Retires streams whose TTL or expiry has passed; returns how many. */
    expire(now: number): number {
      flush();
      const ids = sql.expired.all({ now }) as Array<{ id: number }>;
      for (const { id } of ids) retire(byId(id), now);
      return ids.length;
    },
    putRecord(kind: string, key: string, value: string | null): void {
      if (value === null) sql.deleteRecord.run(kind, key);
      else sql.putRecord.run(kind, key, value);
    },
  };
}
