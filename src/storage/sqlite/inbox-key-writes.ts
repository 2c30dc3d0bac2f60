/*
 * The writer thread's side of inbox key frames (docs/key-frames.md, "Inbox key frames"):
 * the index rows of a keyed event, in the batch's transaction with the event, and a
 * change of an inbox's key definition, which empties its index in the same transaction.
 */
import { entityOf, type EventSource, type KeyFrameDefinition } from "../../core/inbox-keys.js";
import { planKeyIndex } from "../../core/state/key-index.js";
import type { Connection } from "./connection.js";
import { prepareStateWrites } from "./state-writes.js";

/** Parsed definitions by their text; few inboxes have distinct ones, the bound only guards memory. */
const MAX_CACHED_DEFINITIONS = 1000;

export function prepareInboxKeyWrites(db: Connection) {
  const index = prepareStateWrites(db);
  const sql = {
    define: db.prepare("UPDATE streams SET key_frame = ?, key_frame_version = key_frame_version + 1 WHERE id = ?"),
    dropKeys: db.prepare("DELETE FROM state_keys WHERE stream_id = ?"),
    dropHistory: db.prepare("DELETE FROM state_history WHERE stream_id = ?"),
    dropResets: db.prepare("DELETE FROM state_resets WHERE stream_id = ?"),
  };
  const definitions = new Map<string, KeyFrameDefinition>();

  function definition(text: string): KeyFrameDefinition {
    let parsed = definitions.get(text);
    if (!parsed) {
      if (definitions.size >= MAX_CACHED_DEFINITIONS) definitions.clear();
      parsed = JSON.parse(text) as KeyFrameDefinition;
      definitions.set(text, parsed);
    }
    return parsed;
  }

  return {
    /** The index rows of event `seq` of a stream whose key definition is `keyFrame`; none when it has no entity. */
    indexEvent(streamId: number, keyFrame: string, seq: number, event: EventSource): void {
      const entity = entityOf(definition(keyFrame), event);
      if (entity) index.writeKeyIndex(streamId, planKeyIndex([{ kind: "change", ...entity, deleted: false }], seq - 1));
    },

    /**
     * Gives a stream the key definition `next` (null: none). A different one than
     * `current` empties the index, so a snapshot never mixes two definitions; it then
     * holds the events appended from now on. Returns whether anything changed.
     */
    define(streamId: number, current: string | null, next: string | null): boolean {
      if (current === next) return false;
      sql.define.run(next, streamId);
      sql.dropKeys.run(streamId);
      sql.dropHistory.run(streamId);
      sql.dropResets.run(streamId);
      return true;
    },
  };
}
