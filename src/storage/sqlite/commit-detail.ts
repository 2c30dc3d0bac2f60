/*
 * What a committed batch wrote, told to live readers without reading it back: the
 * main thread still holds each appended event (the op it sent: body, receivedAt and
 * the meta string the writer stored), so the messages are rebuilt from the ops and
 * their results. Only plain appends are handed on; any op that may change a stream
 * otherwise (retention, compaction, settings, touches, deletes) marks the commit, and
 * readers then read the store again.
 */
import type { StoredMessage } from "../../core/types.js";
import type { CommitDetail } from "../store.js";
import type { WriteOp, WriteResult } from "./write-ops.js";

/**
 * Ops whose only change to a stream's row is its tail (reported as extended) or none:
 * appendStream reports closing and expiry as a wake-all tail, and hands no messages,
 * so a reader of its stream reads the store.
 */
const TAIL_ONLY: ReadonlySet<WriteOp["kind"]> = new Set<WriteOp["kind"]>([
  "appendEvent",
  "appendStream",
  "createInbox",
  "ensureConsumer",
  "ackConsumer",
  "deleteConsumer",
  "markConsumerSeen",
  "putRecord",
]);

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

export function commitDetail(ops: readonly WriteOp[], results: readonly WriteResult[]): CommitDetail {
  return {
    otherChanges: ops.some((op) => !TAIL_ONLY.has(op.kind)),
    appendedTo(streamId) {
      const messages: StoredMessage[] = [];
      ops.forEach((op, index) => {
        const result = results[index];
        if (op.kind !== "appendEvent" || op.streamId !== streamId || result?.status !== "appended") return;
        // Never undefined for an append; if it were, the gap makes readers read the store.
        const meta = result.meta ?? op.meta;
        if (meta !== undefined) messages.push({ seq: result.seq, createdAt: op.request.receivedAt, data: asBuffer(op.request.body), meta });
      });
      return messages.length > 0 ? messages : undefined;
    },
  };
}
