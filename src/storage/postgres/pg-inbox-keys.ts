/*
 * Inbox key frames on PostgreSQL (docs/key-frames.md, "Inbox key frames"): the index
 * rows of a batch's keyed events, written in the batch's transaction under the
 * stream's row lock, and a change of an inbox's key definition, which empties the
 * index under the same lock. The lock orders the two: an append that locked the row
 * first has its rows removed by the change; one that waited reads the new definition.
 */
import type postgres from "postgres";
import { entityOf, type EventSource, type KeyFrameDefinition } from "../../core/inbox-keys.js";
import { planKeyIndex } from "../../core/state/key-index.js";
import type { StateEntry } from "../../core/state/state-messages.js";
import { writeKeyIndex } from "./pg-state.js";

type Tx = postgres.TransactionSql;

/** Index rows for one stream's events of a batch, whose seqs run from afterSeq + 1 in order. */
export async function writeEventKeys(tx: Tx, streamId: number, keyFrame: string, afterSeq: number, events: EventSource[]): Promise<void> {
  const definition = JSON.parse(keyFrame) as KeyFrameDefinition;
  const entries = events.map((event): StateEntry => {
    const entity = entityOf(definition, event);
    return entity ? { kind: "change", ...entity, deleted: false } : { kind: "hint" };
  });
  if (entries.some((entry) => entry.kind === "change")) await writeKeyIndex(tx, streamId, planKeyIndex(entries, afterSeq));
}

/** Gives the inbox's stream the key definition `next` (null: none); a different one empties the index. */
export async function defineKeyFrame(tx: Tx, streamId: number, next: string | null): Promise<void> {
  const [changed] = await tx`
    UPDATE streams SET key_frame = ${next}, key_frame_version = key_frame_version + 1
    WHERE id = ${streamId} AND key_frame IS DISTINCT FROM ${next} RETURNING id`;
  if (!changed) return;
  await tx`DELETE FROM state_keys WHERE stream_id = ${streamId}`;
  await tx`DELETE FROM state_history WHERE stream_id = ${streamId}`;
  await tx`DELETE FROM state_resets WHERE stream_id = ${streamId}`;
}
