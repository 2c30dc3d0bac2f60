/*
 * Retention on PostgreSQL: one pass of the core retention plan (core/retention.ts)
 * inside one transaction, under an advisory lock so only one process prunes at a time.
 */
import type postgres from "postgres";
import { ageCutoff, deletedTarget, planHeadDrops, retainedTarget, retentionOf, type HeadTarget } from "../../core/retention.js";

/** Rows removed per pass at most: a pass stays a short transaction. */
const PRUNE_ROWS = 2000;

/** Removes what retention and deleted streams release, up to PRUNE_ROWS rows; the rows removed. */
export function pruneHeads(sql: postgres.Sql): Promise<number> {
  return sql.begin(async (tx) => {
    const [lock] = await tx<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(7442292) AS locked`;
    if (!lock?.locked) return 0;
    const now = Date.now();
    const inboxes = await tx<Array<{ streamId: number; settings: string; firstSeq: number; tailSeq: number }>>`
      SELECT i.stream_id AS "streamId", i.settings, s.first_seq AS "firstSeq", s.tail_seq AS "tailSeq"
      FROM inboxes i JOIN streams s ON s.id = i.stream_id
      WHERE i.deleted_at IS NULL AND i.settings LIKE '%"retention"%'`;
    const targets: HeadTarget[] = [];
    for (const inbox of inboxes) {
      const stream = { ...inbox, retention: retentionOf(inbox.settings) };
      const cutoff = ageCutoff(stream.retention, now);
      const [young] =
        cutoff === undefined
          ? []
          : await tx<Array<{ seq: number | null }>>`
        SELECT min(seq) AS seq FROM messages WHERE stream_id = ${inbox.streamId} AND created_at >= ${cutoff}`;
      targets.push(retainedTarget(stream, young?.seq));
    }
    const deleted = await tx<Array<{ id: number; firstSeq: number; tailSeq: number }>>`
      SELECT id, first_seq AS "firstSeq", tail_seq AS "tailSeq" FROM streams WHERE deleted_at IS NOT NULL AND first_seq <= tail_seq`;
    targets.push(...deleted.map(deletedTarget));
    const plan = planHeadDrops(targets, PRUNE_ROWS);
    let step = plan.next(0);
    while (!step.done) {
      const { streamId, fromSeq, stopSeq } = step.value;
      const removed = await tx`DELETE FROM messages WHERE stream_id = ${streamId} AND seq >= ${fromSeq} AND seq < ${stopSeq}`;
      await tx`UPDATE streams SET first_seq = GREATEST(first_seq, ${stopSeq}) WHERE id = ${streamId}`;
      step = plan.next(removed.count);
    }
    let budget = step.value;
    if (budget > 0) {
      const expired = await tx`
        DELETE FROM dedupe WHERE ctid IN (SELECT ctid FROM dedupe WHERE expires_at <= ${now} LIMIT ${budget})`;
      budget -= expired.count;
    }
    return PRUNE_ROWS - budget;
  });
}
