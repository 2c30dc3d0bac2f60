/*
 * State streams on PostgreSQL: the key index rows of an append (written in the
 * append's transaction, under the stream's row lock) and snapshot pages. A page is one
 * statement, hence one database snapshot; pages of one snapshot read agree because
 * they all ask "as of X", which later appends cannot change (docs/key-frames.md).
 */
import type postgres from "postgres";
import type { KeyIndexPlan } from "../../core/state/key-index.js";
import type { SnapshotPage, SnapshotPageRequest, SnapshotValue } from "../../core/state/snapshot.js";

type Tx = postgres.TransactionSql;

export async function writeKeyIndex(tx: Tx, streamId: number, plan: KeyIndexPlan): Promise<void> {
  const rows = (entries: KeyIndexPlan["latest"]) =>
    entries.map((entry) => ({ stream_id: streamId, type: entry.type, key: entry.key, seq: entry.seq, deleted: entry.deleted }));
  if (plan.superseded.length > 0) {
    await tx`INSERT INTO state_history ${tx(rows(plan.superseded), "stream_id", "type", "key", "seq", "deleted")}`;
  }
  if (plan.latest.length > 0) {
    const types = plan.latest.map((entry) => entry.type);
    const keys = plan.latest.map((entry) => entry.key);
    await tx`
      INSERT INTO state_history (stream_id, type, key, seq, deleted)
      SELECT k.stream_id, k.type, k.key, k.seq, k.deleted
      FROM state_keys k JOIN unnest(${tx.array(types)}::text[], ${tx.array(keys)}::text[]) AS t(type, key)
        ON k.type = t.type COLLATE "C" AND k.key = t.key COLLATE "C"
      WHERE k.stream_id = ${streamId}`;
    await tx`
      INSERT INTO state_keys ${tx(rows(plan.latest), "stream_id", "type", "key", "seq", "deleted")}
      ON CONFLICT (stream_id, type, key) DO UPDATE SET seq = EXCLUDED.seq, deleted = EXCLUDED.deleted`;
  }
  if (plan.resets.length > 0) {
    await tx`INSERT INTO state_resets ${tx(
      plan.resets.map((seq) => ({ stream_id: streamId, seq })),
      "stream_id",
      "seq",
    )}`;
  }
}

interface PageRow {
  type: string;
  key: string;
  seq: number | null;
  data: Buffer | null;
  meta: string | null;
  createdAt: number | null;
  before: number;
  horizon: number;
}

/**
 * The next maxKeys keys after `after`, each with the message holding its value as of
 * X when it had one then: the latest change if at or before X, else the latest
 * superseded one at or before X; none when that is a delete or not after the last
 * reset at or before X. The running byte total cuts the page in the database.
 */
export async function readSnapshotPage(sql: postgres.Sql, streamId: number, request: SnapshotPageRequest): Promise<SnapshotPage> {
  const { asOfSeq, after, maxKeys, maxBytes } = request;
  const afterType = after?.type ?? "";
  const afterKey = after?.key ?? "";
  const rows = await sql<PageRow[]>`
    WITH reset AS (
      SELECT COALESCE(MAX(seq), 0) AS seq FROM state_resets WHERE stream_id = ${streamId} AND seq <= ${asOfSeq}
    ), examined AS (
      SELECT k.type, k.key,
        CASE WHEN k.seq <= ${asOfSeq} THEN k.seq ELSE h.seq END AS seq,
        CASE WHEN k.seq <= ${asOfSeq} THEN k.deleted ELSE h.deleted END AS deleted
      FROM state_keys k
      LEFT JOIN LATERAL (
        SELECT seq, deleted FROM state_history
        WHERE stream_id = k.stream_id AND type = k.type AND key = k.key AND seq <= ${asOfSeq}
        ORDER BY seq DESC LIMIT 1
      ) h ON k.seq > ${asOfSeq}
      WHERE k.stream_id = ${streamId} AND (k.type, k.key) > (${afterType}::text COLLATE "C", ${afterKey}::text COLLATE "C")
      ORDER BY k.type, k.key LIMIT ${maxKeys}
    ), valued AS (
      SELECT e.type, e.key, m.seq, m.data, m.meta, m.created_at AS "createdAt",
        COALESCE(sum(octet_length(m.data)) OVER (ORDER BY e.type, e.key), 0) - COALESCE(octet_length(m.data), 0) AS before
      FROM examined e
      LEFT JOIN messages m ON m.stream_id = ${streamId} AND m.seq = e.seq AND NOT e.deleted AND e.seq > (SELECT seq FROM reset)
    )
    SELECT type, key, seq, data, meta, "createdAt", before::bigint AS before,
      (SELECT horizon_seq FROM streams WHERE id = ${streamId}) AS horizon
    FROM valued ORDER BY type, key`;
  const values: SnapshotValue[] = [];
  let last: { type: string; key: string } | null = null;
  let cut = false;
  for (const row of rows) {
    // At least one value per page; after that, stop once the bytes before a value reach the limit.
    if (row.data !== null && values.length > 0 && row.before >= maxBytes) {
      cut = true;
      break;
    }
    last = { type: row.type, key: row.key };
    if (row.data !== null && row.seq !== null) {
      values.push({ type: row.type, key: row.key, seq: row.seq, data: row.data, meta: row.meta, createdAt: Number(row.createdAt) });
    }
  }
  // The same statement, so the same snapshot as the rows: a pass past X shows here.
  const horizonSeq = Number(rows[0]?.horizon ?? 0);
  return { values, last: last ?? after, done: !cut && rows.length < maxKeys, horizonSeq };
}
