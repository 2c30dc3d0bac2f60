/*
 * The writer thread's side of state streams: the key index rows of an append
 * (core/state/key-index.ts), written in the batch's transaction with its messages.
 */
import type { KeyIndexPlan } from "../../core/state/key-index.js";
import type { Connection } from "./connection.js";

export function prepareStateWrites(db: Connection) {
  const sql = {
    retireLatest: db.prepare(
      `INSERT INTO state_history (stream_id, type, key, seq, deleted)
       SELECT stream_id, type, key, seq, deleted FROM state_keys WHERE stream_id = ? AND type = ? AND key = ?`,
    ),
    setLatest: db.prepare(
      `INSERT INTO state_keys (stream_id, type, key, seq, deleted) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (stream_id, type, key) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted`,
    ),
    addHistory: db.prepare("INSERT INTO state_history (stream_id, type, key, seq, deleted) VALUES (?, ?, ?, ?, ?)"),
    addReset: db.prepare("INSERT INTO state_resets (stream_id, seq) VALUES (?, ?)"),
  };

  return {
    writeKeyIndex(streamId: number, plan: KeyIndexPlan): void {
      for (const entry of plan.superseded) sql.addHistory.run(streamId, entry.type, entry.key, entry.seq, entry.deleted ? 1 : 0);
      for (const entry of plan.latest) {
        sql.retireLatest.run(streamId, entry.type, entry.key);
        sql.setLatest.run(streamId, entry.type, entry.key, entry.seq, entry.deleted ? 1 : 0);
      }
      for (const seq of plan.resets) sql.addReset.run(streamId, seq);
    },
  };
}
