/*
 * Compaction on PostgreSQL (core/compaction.ts, docs/key-frames.md "Compaction"). Each
 * step is one short transaction under an advisory lock (one process compacts at a
 * time) that removes at most a budget of rows. The first removal of a step raises the
 * stream's stored H in the same transaction (taking its row lock, as appends do), so a
 * reader never sees a hole that H does not announce. Where a pass stands lives in this
 * process's memory; a pass another process ran meanwhile only makes some rows gone
 * already, and H is only ever raised. Also here: the key index of deleted streams.
 */
import { setTimeout as delay } from "node:timers/promises";
import type postgres from "postgres";
import {
  CompactionPasses,
  supersededRows,
  tombstoneCutoff,
  type CompactionPass,
  type CompactionPolicy,
  type HistoryEntry,
} from "../../core/compaction.js";

type Tx = postgres.TransactionSql;

const COMPACTION_LOCK = 7442293;
const STEP_ROWS = 2000;
const SCAN_ROWS = 2000;
const DELETED_STREAMS_PER_STEP = 10;
const LOCK_TRIES = 250;
const LOCK_RETRY_MS = 20;

interface CompactedStream {
  id: number;
  tailSeq: number;
  horizonSeq: number;
  policy: CompactionPolicy;
}

interface Outcome {
  rows: number;
  removed: number;
  done: boolean;
}

async function raise(tx: Tx, stream: CompactedStream, horizon: number): Promise<void> {
  if (stream.horizonSeq >= horizon) return;
  await tx`UPDATE streams SET horizon_seq = GREATEST(horizon_seq, ${horizon}) WHERE id = ${stream.id}`;
  stream.horizonSeq = horizon;
}

/** Removes the history rows (and their messages) named by (type, key, seq); the messages removed. */
async function dropHistory(tx: Tx, streamId: number, rows: HistoryEntry[]): Promise<number> {
  if (rows.length === 0) return 0;
  const types = tx.array(rows.map((row) => row.type));
  const keys = tx.array(rows.map((row) => row.key));
  const seqs = tx.array(rows.map((row) => row.seq));
  await tx`
    DELETE FROM state_history h USING unnest(${types}::text[], ${keys}::text[], ${seqs}::bigint[]) AS d(type, key, seq)
    WHERE h.stream_id = ${streamId} AND h.type = d.type COLLATE "C" AND h.key = d.key COLLATE "C" AND h.seq = d.seq`;
  return (await tx`DELETE FROM messages WHERE stream_id = ${streamId} AND seq = ANY(${seqs}::bigint[])`).count;
}

async function removeSuperseded(tx: Tx, stream: CompactedStream, pass: CompactionPass, budget: number): Promise<Outcome> {
  const after = pass.after ?? { type: "", key: "", seq: -1 };
  const rows = await tx<Array<HistoryEntry & { next: number | null }>>`
    SELECT h.type, h.key, h.seq, COALESCE(n.seq, k.seq) AS next
    FROM (
      SELECT type, key, seq FROM state_history
      WHERE stream_id = ${stream.id} AND (type, key, seq) > (${after.type}::text COLLATE "C", ${after.key}::text COLLATE "C", ${after.seq})
      ORDER BY type, key, seq LIMIT ${SCAN_ROWS}
    ) h
    LEFT JOIN LATERAL (
      SELECT seq FROM state_history WHERE stream_id = ${stream.id} AND type = h.type AND key = h.key AND seq > h.seq ORDER BY seq LIMIT 1
    ) n ON true
    LEFT JOIN state_keys k ON k.stream_id = ${stream.id} AND k.type = h.type AND k.key = h.key
    ORDER BY h.type, h.key, h.seq`;
  const superseded = new Set(supersededRows(rows, pass.horizon, (row) => (row as (typeof rows)[number]).next ?? undefined));
  const doomed: HistoryEntry[] = [];
  let stopped = false;
  for (const row of rows) {
    if (doomed.length >= budget) {
      stopped = true;
      break;
    }
    pass.after = { type: row.type, key: row.key, seq: row.seq };
    if (superseded.has(row)) doomed.push(row);
  }
  if (doomed.length > 0) await raise(tx, stream, pass.horizon);
  const removed = await dropHistory(tx, stream.id, doomed);
  return { rows: doomed.length * 2, removed, done: !stopped && rows.length < SCAN_ROWS };
}

async function removeTombstones(tx: Tx, stream: CompactedStream, pass: CompactionPass, budget: number, now: number): Promise<Outcome> {
  const cutoff = tombstoneCutoff(stream.policy, now);
  if (cutoff === undefined) return { rows: 0, removed: 0, done: true };
  const latest = await tx<HistoryEntry[]>`
    SELECT k.type, k.key, k.seq FROM state_keys k JOIN messages m ON m.stream_id = k.stream_id AND m.seq = k.seq
    WHERE k.stream_id = ${stream.id} AND k.deleted AND k.seq <= ${pass.horizon} AND m.created_at <= ${cutoff} LIMIT ${budget}`;
  const left = budget - latest.length;
  const history =
    left > 0
      ? await tx<HistoryEntry[]>`
    SELECT h.type, h.key, h.seq FROM state_history h JOIN messages m ON m.stream_id = h.stream_id AND m.seq = h.seq
    WHERE h.stream_id = ${stream.id} AND h.deleted AND h.seq <= ${pass.horizon} AND m.created_at <= ${cutoff} LIMIT ${left}`
      : [];
  if (latest.length + history.length > 0) await raise(tx, stream, pass.horizon);
  let removed = 0;
  if (latest.length > 0) {
    const types = tx.array(latest.map((row) => row.type));
    const keys = tx.array(latest.map((row) => row.key));
    const seqs = tx.array(latest.map((row) => row.seq));
    // The seq too: an append that committed meanwhile has made a newer change the key's latest (the tombstone moved to history).
    await tx`
      DELETE FROM state_keys k USING unnest(${types}::text[], ${keys}::text[], ${seqs}::bigint[]) AS d(type, key, seq)
      WHERE k.stream_id = ${stream.id} AND k.type = d.type COLLATE "C" AND k.key = d.key COLLATE "C" AND k.seq = d.seq`;
    removed += (await tx`DELETE FROM messages WHERE stream_id = ${stream.id} AND seq = ANY(${seqs}::bigint[])`).count;
  }
  removed += await dropHistory(tx, stream.id, history);
  const rows = latest.length + history.length;
  return { rows: rows * 2, removed, done: rows < budget };
}

/** Index rows of deleted streams, then the marks that say a deleted stream still has some. */
async function removeDeletedIndexes(tx: Tx, budget: number): Promise<{ rows: number; more: boolean }> {
  let left = budget;
  const streams = await tx<Array<{ id: number }>>`
    SELECT id FROM streams WHERE deleted_at IS NOT NULL AND (state_protocol IS NOT NULL OR key_frame IS NOT NULL OR compaction IS NOT NULL)
    LIMIT ${DELETED_STREAMS_PER_STEP}`;
  for (const { id } of streams) {
    if (left <= 0) return { rows: budget, more: true };
    left -= (await tx`DELETE FROM state_history WHERE ctid IN (SELECT ctid FROM state_history WHERE stream_id = ${id} LIMIT ${left})`)
      .count;
    if (left > 0)
      left -= (await tx`DELETE FROM state_keys WHERE ctid IN (SELECT ctid FROM state_keys WHERE stream_id = ${id} LIMIT ${left})`).count;
    if (left > 0)
      left -= (await tx`DELETE FROM state_resets WHERE ctid IN (SELECT ctid FROM state_resets WHERE stream_id = ${id} LIMIT ${left})`)
        .count;
    if (left > 0) await tx`UPDATE streams SET state_protocol = NULL, key_frame = NULL, compaction = NULL WHERE id = ${id}`;
  }
  return { rows: budget - left, more: left <= 0 };
}

export class PgCompaction {
  private readonly passes = new CompactionPasses();
  private round = 0;

  constructor(private readonly sql: postgres.Sql) {}

  async setPolicy(streamId: number, policy: CompactionPolicy | null): Promise<boolean> {
    const text = policy === null ? null : JSON.stringify(policy);
    const updated = await this.sql`UPDATE streams SET compaction = ${text} WHERE id = ${streamId} AND deleted_at IS NULL`;
    this.passes.reset(streamId);
    return updated.count > 0;
  }

  /**
   * Steps until no work is left; the messages removed, reported per step. While
   * another run (of this process or another) holds the lock, its steps go first: this
   * run waits between tries, and gives up after a while (the next tick runs again).
   */
  async run(onRemoved: (messages: number) => void): Promise<number> {
    const round = ++this.round;
    let total = 0;
    for (let busy = 0; busy < LOCK_TRIES;) {
      const step = await this.step(round);
      if (step === "busy") {
        busy++;
        await delay(LOCK_RETRY_MS);
        continue;
      }
      total += step.removed;
      onRemoved(step.removed);
      if (!step.more) break;
    }
    return total;
  }

  private step(round: number): Promise<{ removed: number; more: boolean } | "busy"> {
    return this.sql.begin(async (tx) => {
      const [lock] = await tx<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(${COMPACTION_LOCK}) AS locked`;
      if (!lock?.locked) return "busy" as const;
      const now = Date.now();
      const streams = await tx<CompactedStream[]>`
        SELECT id, tail_seq AS "tailSeq", horizon_seq AS "horizonSeq", compaction::json AS policy
        FROM streams WHERE compaction IS NOT NULL AND deleted_at IS NULL`;
      let budget = STEP_ROWS;
      let removed = 0;
      let more = false;
      for (const stream of streams) {
        if (budget <= 0) {
          more = true;
          break;
        }
        const pass = this.passes.next(stream, round);
        if (!pass) continue;
        const outcome =
          pass.phase === "superseded"
            ? await removeSuperseded(tx, stream, pass, budget)
            : await removeTombstones(tx, stream, pass, budget, now);
        budget -= Math.max(outcome.rows, 1);
        removed += outcome.removed;
        if (!outcome.done || this.passes.phaseDone(stream.id, round) || this.passes.worthAnother(stream, STEP_ROWS)) more = true;
      }
      const deleted = budget > 0 ? await removeDeletedIndexes(tx, budget) : { rows: 0, more: true };
      return { removed, more: more || deleted.more };
    });
  }
}
