/*
 * Compaction on SQLite (core/compaction.ts, docs/key-frames.md "Compaction"), in the
 * writer thread. A pass over a stream keeps its horizon P from first step to last; each
 * step is one write op (one transaction with whatever else the batch holds) that
 * removes at most a budget of rows, so ingest never waits long behind it. Where a pass
 * stands lives in this thread's memory: a restarted thread starts the pass again.
 * Also here: the key index rows of deleted streams, removed in bounded steps.
 */
import {
  CompactionPasses,
  policyOf,
  supersededRows,
  tombstoneCutoff,
  type CompactionPass,
  type HistoryEntry,
} from "../../core/compaction.js";
import type { Connection } from "./connection.js";

/** History rows looked at per step, removable or not. */
const SCAN_ROWS = 20_000;
/** Deleted streams whose index rows one step looks at. */
const DELETED_STREAMS_PER_STEP = 10;

interface CompactedStream {
  id: number;
  tailSeq: number;
  horizonSeq: number;
  compaction: string;
}

export interface CompactionStep {
  /** Messages removed. */
  removed: number;
  /** Index rows and messages removed, against the budget. */
  rows: number;
  /** Work is left: run another step. */
  more: boolean;
}

export function prepareCompactionWrites(db: Connection, forgetId: (streamId: number) => void) {
  const sql = {
    setPolicy: db.prepare("UPDATE streams SET compaction = ? WHERE id = ? AND deleted_at IS NULL"),
    compacted: db.prepare(
      "SELECT id, tail_seq AS tailSeq, horizon_seq AS horizonSeq, compaction FROM streams WHERE compaction IS NOT NULL AND deleted_at IS NULL",
    ),
    history: db.prepare(
      `SELECT type, key, seq FROM state_history WHERE stream_id = ? AND (type, key, seq) > (?, ?, ?)
       ORDER BY type, key, seq LIMIT ?`,
    ),
    nextHistory: db.prepare("SELECT seq FROM state_history WHERE stream_id = ? AND type = ? AND key = ? AND seq > ? ORDER BY seq LIMIT 1"),
    latest: db.prepare("SELECT seq FROM state_keys WHERE stream_id = ? AND type = ? AND key = ?"),
    dropHistory: db.prepare("DELETE FROM state_history WHERE stream_id = ? AND type = ? AND key = ? AND seq = ?"),
    dropLatest: db.prepare("DELETE FROM state_keys WHERE stream_id = ? AND type = ? AND key = ? AND seq = ?"),
    dropMessage: db.prepare("DELETE FROM messages WHERE stream_id = ? AND seq = ?"),
    oldLatestTombstones: db.prepare(
      `SELECT k.type, k.key, k.seq FROM state_keys k JOIN messages m ON m.stream_id = k.stream_id AND m.seq = k.seq
       WHERE k.stream_id = ? AND k.deleted = 1 AND k.seq <= ? AND m.created_at <= ? LIMIT ?`,
    ),
    oldHistoryTombstones: db.prepare(
      `SELECT h.type, h.key, h.seq FROM state_history h JOIN messages m ON m.stream_id = h.stream_id AND m.seq = h.seq
       WHERE h.stream_id = ? AND h.deleted = 1 AND h.seq <= ? AND m.created_at <= ? LIMIT ?`,
    ),
    raiseHorizon: db.prepare("UPDATE streams SET horizon_seq = MAX(horizon_seq, ?) WHERE id = ?"),
    deletedIndexed: db.prepare(
      `SELECT id FROM streams WHERE deleted_at IS NOT NULL AND (state_protocol IS NOT NULL OR key_frame IS NOT NULL OR compaction IS NOT NULL)
       LIMIT ${DELETED_STREAMS_PER_STEP}`,
    ),
    dropDeletedHistory: db.prepare(
      "DELETE FROM state_history WHERE stream_id = ? AND (type, key, seq) IN (SELECT type, key, seq FROM state_history WHERE stream_id = ? LIMIT ?)",
    ),
    dropDeletedKeys: db.prepare(
      "DELETE FROM state_keys WHERE stream_id = ? AND (type, key) IN (SELECT type, key FROM state_keys WHERE stream_id = ? LIMIT ?)",
    ),
    dropDeletedResets: db.prepare(
      "DELETE FROM state_resets WHERE stream_id = ? AND seq IN (SELECT seq FROM state_resets WHERE stream_id = ? LIMIT ?)",
    ),
    forgetIndexed: db.prepare("UPDATE streams SET state_protocol = NULL, key_frame = NULL, compaction = NULL WHERE id = ?"),
  };

  const passes = new CompactionPasses();

  /** The first removal of a pass raises the stored H in the same transaction, so no reader sees a hole before H says so. */
  function raise(stream: CompactedStream, horizon: number): void {
    if (stream.horizonSeq >= horizon) return;
    sql.raiseHorizon.run(horizon, stream.id);
    stream.horizonSeq = horizon;
    forgetId(stream.id);
  }

  function nextSeqOf(streamId: number, row: HistoryEntry): number | undefined {
    const next = sql.nextHistory.get(streamId, row.type, row.key, row.seq) as { seq: number } | undefined;
    return next?.seq ?? (sql.latest.get(streamId, row.type, row.key) as { seq: number } | undefined)?.seq;
  }

  /** One step of the superseded phase: the rows removed, and whether the phase is done. */
  function removeSuperseded(
    stream: CompactedStream,
    pass: CompactionPass,
    budget: number,
  ): { rows: number; removed: number; done: boolean } {
    const after = pass.after ?? { type: "", key: "", seq: -1 };
    const scan = Math.min(SCAN_ROWS, Math.max(budget, 1) * 2);
    const rows = sql.history.all(stream.id, after.type, after.key, after.seq, scan) as HistoryEntry[];
    const superseded = new Set(supersededRows(rows, pass.horizon, (row) => nextSeqOf(stream.id, row)));
    let dropped = 0;
    let removed = 0;
    let stopped = false;
    // Up to the budget, in key order; the rest of the run is looked at again by the next step.
    for (const row of rows) {
      if (dropped >= budget) {
        stopped = true;
        break;
      }
      pass.after = row;
      if (!superseded.has(row)) continue;
      raise(stream, pass.horizon);
      sql.dropHistory.run(stream.id, row.type, row.key, row.seq);
      removed += sql.dropMessage.run(stream.id, row.seq).changes;
      dropped++;
    }
    return { rows: dropped * 2, removed, done: !stopped && rows.length < scan };
  }

  /** One step of the tombstone phase: old deletes at or before P, latest or not, with their messages. */
  function removeTombstones(
    stream: CompactedStream,
    pass: CompactionPass,
    budget: number,
    now: number,
  ): { rows: number; removed: number; done: boolean } {
    const cutoff = tombstoneCutoff(policyOf(stream.compaction)!, now);
    if (cutoff === undefined) return { rows: 0, removed: 0, done: true };
    let removed = 0;
    const latest = sql.oldLatestTombstones.all(stream.id, pass.horizon, cutoff, budget) as HistoryEntry[];
    for (const row of latest) {
      raise(stream, pass.horizon);
      sql.dropLatest.run(stream.id, row.type, row.key, row.seq);
      removed += sql.dropMessage.run(stream.id, row.seq).changes;
    }
    const left = budget - latest.length;
    const history = left > 0 ? (sql.oldHistoryTombstones.all(stream.id, pass.horizon, cutoff, left) as HistoryEntry[]) : [];
    for (const row of history) {
      raise(stream, pass.horizon);
      sql.dropHistory.run(stream.id, row.type, row.key, row.seq);
      removed += sql.dropMessage.run(stream.id, row.seq).changes;
    }
    const rows = latest.length + history.length;
    return { rows: rows * 2, removed, done: rows < budget };
  }

  /** Index rows of deleted streams, then the marks that say a deleted stream still has some. */
  function removeDeletedIndexes(budget: number): { rows: number; more: boolean } {
    let left = budget;
    for (const { id } of sql.deletedIndexed.all() as Array<{ id: number }>) {
      if (left <= 0) return { rows: budget, more: true };
      left -= sql.dropDeletedHistory.run(id, id, left).changes;
      if (left > 0) left -= sql.dropDeletedKeys.run(id, id, left).changes;
      if (left > 0) left -= sql.dropDeletedResets.run(id, id, left).changes;
      if (left > 0) sql.forgetIndexed.run(id);
    }
    return { rows: budget - left, more: left <= 0 };
  }

  return {
    setPolicy(streamId: number, policy: string | null): boolean {
      const changed = sql.setPolicy.run(policy, streamId).changes > 0;
      forgetId(streamId);
      passes.reset(streamId);
      return changed;
    },

    /** One step over every compacted stream that has work, within `maxRows`; `round` names the run of steps it belongs to. */
    step(now: number, maxRows: number, round: number): CompactionStep {
      let budget = maxRows;
      let removed = 0;
      let more = false;
      for (const stream of sql.compacted.all() as CompactedStream[]) {
        if (budget <= 0) {
          more = true;
          break;
        }
        const compacted = { ...stream, policy: policyOf(stream.compaction)! };
        const pass = passes.next(compacted, round);
        if (!pass) continue;
        const outcome = pass.phase === "superseded" ? removeSuperseded(stream, pass, budget) : removeTombstones(stream, pass, budget, now);
        budget -= Math.max(outcome.rows, 1);
        removed += outcome.removed;
        if (!outcome.done || passes.phaseDone(stream.id, round) || passes.worthAnother(compacted, maxRows)) more = true;
      }
      const deleted = budget > 0 ? removeDeletedIndexes(budget) : { rows: 0, more: true };
      return { removed, rows: maxRows - budget + deleted.rows, more: more || deleted.more };
    },
  };
}
