/*
 * Snapshot pages of state streams on SQLite, on the reader connection. The caller runs
 * a page in one read transaction; pages of one snapshot read agree because they all
 * ask "as of X", which later appends cannot change (docs/key-frames.md).
 */
import { valueSeqAsOf, type IndexedKey } from "../../core/state/key-index.js";
import type { SnapshotPage, SnapshotPageRequest, SnapshotValue } from "../../core/state/snapshot.js";
import type { Connection } from "./connection.js";
import type { StoredMessage } from "../../core/types.js";
import { fillBodies } from "./body-files.js";

interface KeyRow {
  type: string;
  key: string;
  seq: number;
  deleted: number;
}

export function prepareStateReads(reader: Connection, bodies: string) {
  const sql = {
    keys: reader.prepare(
      "SELECT type, key, seq, deleted FROM state_keys WHERE stream_id = ? AND (type, key) > (?, ?) ORDER BY type, key LIMIT ?",
    ),
    before: reader.prepare(
      "SELECT seq, deleted FROM state_history WHERE stream_id = ? AND type = ? AND key = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
    ),
    reset: reader.prepare("SELECT COALESCE(MAX(seq), 0) AS seq FROM state_resets WHERE stream_id = ? AND seq <= ?"),
    message: reader.prepare(
      "SELECT seq, data, meta, created_at AS createdAt, body_file AS bodyFile FROM messages WHERE stream_id = ? AND seq = ?",
    ),
    horizon: reader.prepare("SELECT horizon_seq AS seq FROM streams WHERE id = ?"),
  };

  function indexed(streamId: number, row: KeyRow, asOfSeq: number): IndexedKey {
    const entry: IndexedKey = { type: row.type, key: row.key, seq: row.seq, deleted: row.deleted !== 0 };
    if (row.seq <= asOfSeq) return entry;
    const before = sql.before.get(streamId, row.type, row.key, asOfSeq) as KeyRow | undefined;
    return { ...entry, before: before && { seq: before.seq, deleted: before.deleted !== 0 } };
  }

  /** One page: call inside a read transaction. */
  return function readSnapshotPage(streamId: number, request: SnapshotPageRequest): SnapshotPage {
    const { asOfSeq, after, maxKeys, maxBytes } = request;
    // In the same read transaction as the rows: a pass past X voids the page before any row is read.
    const horizonSeq = (sql.horizon.get(streamId) as { seq: number } | undefined)?.seq ?? 0;
    if (horizonSeq > asOfSeq) return { values: [], last: after, done: false, horizonSeq };
    const resetSeq = (sql.reset.get(streamId, asOfSeq) as { seq: number }).seq;
    const rows = sql.keys.all(streamId, after?.type ?? "", after?.key ?? "", maxKeys) as KeyRow[];
    const values: SnapshotValue[] = [];
    let last = after;
    let bytes = 0;
    for (const row of rows) {
      const seq = valueSeqAsOf(indexed(streamId, row, asOfSeq), asOfSeq, resetSeq);
      if (seq !== undefined) {
        // At least one value per page; after that, stop before the byte limit is passed.
        if (values.length > 0 && bytes >= maxBytes) return { values, last, done: false, horizonSeq };
        const found = sql.message.get(streamId, seq) as StoredMessage | undefined;
        // Ordinary retention may have removed it (compaction keeps it): no value to show, as on PostgreSQL.
        if (found) {
          const { data, meta, createdAt } = fillBodies(bodies, streamId, [found])[0]!;
          values.push({ type: row.type, key: row.key, seq, data, meta, createdAt });
          bytes += data.length;
        }
      }
      last = { type: row.type, key: row.key };
    }
    return { values, last, done: rows.length < maxKeys, horizonSeq };
  };
}
