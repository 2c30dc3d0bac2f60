/*
 * One group-commit batch of webhook appends, inside its transaction: each stream's row
 * is locked (in id order, so two processes' batches cannot deadlock) and hands out the
 * next seqs; delivery ids are checked under that lock; the messages go in one INSERT.
 */
import type postgres from "postgres";
import { encodeEventMeta } from "../../core/capture.js";
import type { CapturedRequest } from "../../core/types.js";
import type { AppendEventResult } from "../store.js";
import { DeliveryWrites, type SeenDelivery } from "./dedupe-writes.js";
import { writeEventKeys } from "./pg-inbox-keys.js";

export interface AppendOp {
  streamId: number;
  request: CapturedRequest;
  dedupe?: { key: string; windowMs: number };
}

/** Writes the batch in `tx`; fills `tails` with each extended stream's new tail; `notify` announces them. */
export async function writeAppendBatch(
  tx: postgres.TransactionSql,
  ops: AppendOp[],
  tails: Map<number, number>,
  notify: (tails: ReadonlyMap<number, number>) => Promise<void>,
): Promise<AppendEventResult[]> {
  const byStream = new Map<number, number[]>();
  ops.forEach((op, index) => {
    const indexes = byStream.get(op.streamId);
    if (indexes) indexes.push(index);
    else byStream.set(op.streamId, [index]);
  });
  // Lock streams in id order so two processes' batches cannot deadlock.
  const streamIds = [...byStream.keys()].sort((a, b) => a - b);
  const seqs: Array<number | undefined> = new Array(ops.length);
  const out: AppendEventResult[] = new Array(ops.length);
  const deliveries = new DeliveryWrites();
  /** Each locked stream's key definition as of its lock (null: none). */
  const keyFrames = new Map<number, string | null>();
  for (const streamId of streamIds) {
    const indexes = byStream.get(streamId)!;
    if (indexes.some((index) => ops[index]!.dedupe)) {
      await assignDeduped(tx, streamId, indexes, ops, seqs, out, deliveries, tails, keyFrames);
      continue;
    }
    const count = indexes.length;
    const [row] = await tx<Array<{ tailSeq: number; keyFrame: string | null }>>`
        UPDATE streams SET tail_seq = tail_seq + ${count}
        WHERE id = ${streamId} AND deleted_at IS NULL
        RETURNING tail_seq AS "tailSeq", key_frame AS "keyFrame"`;
    if (row) tails.set(streamId, row.tailSeq);
    if (row) keyFrames.set(streamId, row.keyFrame);
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
    await notify(tails);
  }
  await writeKeysOf(tx, ops, byStream, seqs, keyFrames);
  await deliveries.write(tx);
  return out;
}

/** The key index rows of the appended events of each stream with a key definition. */
async function writeKeysOf(
  tx: postgres.TransactionSql,
  ops: AppendOp[],
  byStream: Map<number, number[]>,
  seqs: Array<number | undefined>,
  keyFrames: Map<number, string | null>,
): Promise<void> {
  for (const [streamId, keyFrame] of keyFrames) {
    if (keyFrame === null) continue;
    // A stream's appended ops got consecutive seqs in op order (duplicates got none).
    const appended = byStream.get(streamId)!.filter((index) => seqs[index] !== undefined);
    if (appended.length === 0) continue;
    const events = appended.map((index) => ({ body: ops[index]!.request.body, rawHeaders: ops[index]!.request.rawHeaders }));
    await writeEventKeys(tx, streamId, keyFrame, seqs[appended[0]!]! - 1, events);
  }
}

/**
 * Seqs for one stream's ops when some carry a delivery id. The stream's row is locked
 * first, so another process appending to it waits for our commit and then sees our
 * dedupe rows (READ COMMITTED reads anew each statement): a delivery id is appended once.
 */
async function assignDeduped(
  tx: postgres.TransactionSql,
  streamId: number,
  indexes: number[],
  ops: AppendOp[],
  seqs: Array<number | undefined>,
  out: AppendEventResult[],
  deliveries: DeliveryWrites,
  tails: Map<number, number>,
  keyFrames: Map<number, string | null>,
): Promise<void> {
  const [locked] = await tx<Array<{ tailSeq: number; keyFrame: string | null }>>`
    SELECT tail_seq AS "tailSeq", key_frame AS "keyFrame" FROM streams WHERE id = ${streamId} AND deleted_at IS NULL FOR UPDATE`;
  if (!locked) return; // every op of the stream answers not_found
  keyFrames.set(streamId, locked.keyFrame);
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
    const entry = {
      stream_id: streamId,
      key: dedupe.key,
      seq: tail,
      event_id: op.request.id,
      first_at: now,
      expires_at: now + dedupe.windowMs,
      deliveries: 1,
    };
    deliveries.add(entry);
    known.set(dedupe.key, { key: dedupe.key, seq: tail, id: op.request.id, firstAt: now, entry });
  }
  if (tail !== locked.tailSeq) {
    await tx`UPDATE streams SET tail_seq = ${tail} WHERE id = ${streamId}`;
    tails.set(streamId, tail);
  }
}
