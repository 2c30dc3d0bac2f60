/*
 * The writer thread's statements for consumers: named cursors whose committed seq
 * only ever moves forward.
 */
import type { Consumer } from "../../core/types.js";
import type { Connection } from "./connection.js";

export const CONSUMER_COLUMNS =
  "stream_id AS streamId, name, committed_seq AS committedSeq, created_at AS createdAt, last_ack_at AS lastAckAt, last_seen_at AS lastSeenAt";

export function prepareConsumerWrites(db: Connection) {
  const insert = db.prepare("INSERT OR IGNORE INTO consumers (stream_id, name, committed_seq, created_at) VALUES (?, ?, ?, ?)");
  const select = db.prepare(`SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE stream_id = ? AND name = ?`);
  const advance = db.prepare(
    "UPDATE consumers SET committed_seq = MAX(committed_seq, ?), last_ack_at = ? WHERE stream_id = ? AND name = ?",
  );
  const seen = db.prepare("UPDATE consumers SET last_seen_at = ? WHERE stream_id = ? AND name = ?");
  const remove = db.prepare("DELETE FROM consumers WHERE stream_id = ? AND name = ?");
  const removeAll = db.prepare("DELETE FROM consumers WHERE stream_id = ?");

  function ensure(streamId: number, name: string, startSeq: number, now: number): Consumer {
    insert.run(streamId, name, startSeq, now);
    return select.get(streamId, name) as Consumer;
  }

  return {
    ensure,
    ack(streamId: number, name: string, seq: number, now: number): Consumer {
      ensure(streamId, name, seq, now);
      advance.run(seq, now, streamId, name);
      return select.get(streamId, name) as Consumer;
    },
    markSeen(streamId: number, name: string, now: number): void {
      seen.run(now, streamId, name);
    },
    remove(streamId: number, name: string): boolean {
      return remove.run(streamId, name).changes > 0;
    },
    removeAll(streamId: number): void {
      removeAll.run(streamId);
    },
  };
}
