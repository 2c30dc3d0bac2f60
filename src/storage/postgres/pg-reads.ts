/*
 * Reads of the PostgreSQL store: stream rows, tails and pages of messages. Each page is
 * one snapshot (one statement, or one REPEATABLE READ transaction across a fork's
 * segments), so a prune committed mid-page cannot open a hole in it.
 */
import type postgres from "postgres";
import type { StoredMessage, StreamInfo } from "../../core/types.js";
import type { ReadLimits } from "../store.js";
import { readSegments, spansSegments, type SegmentCache } from "../segments.js";
import { WAKE_ALL } from "../../core/stream-rules.js";

/** Runs a query through the store's health bookkeeping. */
export type TrackQuery = <T>(query: () => Promise<T>) => Promise<T>;

export class PgReads {
  constructor(
    private readonly sql: postgres.Sql,
    private readonly track: TrackQuery,
    private readonly segments: SegmentCache,
  ) {}

  private streamColumns() {
    return this
      .sql`id, name, content_type AS "contentType", tail_seq AS "tailSeq", first_seq AS "firstSeq", closed, created_at AS "createdAt",
      soft_deleted AS "softDeleted", ttl_seconds AS "ttlSeconds", expires_at AS "expiresAt", touched_at AS "touchedAt",
      forked_from AS "forkedFrom", fork_seq AS "forkSeq", state_protocol AS "stateProtocol", key_frame AS "keyFrame", key_frame_version AS "keyFrameVersion",
      horizon_seq AS "horizonSeq", compaction::json AS compaction`;
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
    if (!spansSegments(segments, afterSeq))
      return this.track(() => readSegments(segments, afterSeq, limits, (...range) => this.readRange(this.sql, ...range)));
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

  async messageTime(streamId: number, seq: number): Promise<number | undefined> {
    const owner = await this.segments.ownerOf(streamId, seq);
    const [row] = await this.track(
      () =>
        this.sql<Array<{ createdAt: number }>>`SELECT created_at AS "createdAt" FROM messages WHERE stream_id = ${owner} AND seq = ${seq}`,
    );
    return row?.createdAt;
  }
}
