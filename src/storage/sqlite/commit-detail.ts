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
  const appended = new Map<number, StoredMessage[]>();
  let otherChanges = false;
  ops.forEach((op, index) => {
    if (!TAIL_ONLY.has(op.kind)) otherChanges = true;
    const result = results[index];
    if (op.kind !== "appendEvent" || result?.status !== "appended") return;
    // Never undefined for an append; if it were, the gap makes readers read the store.
    const meta = result.meta ?? op.meta;
    if (meta === undefined) return;
    const message: StoredMessage = { seq: result.seq, createdAt: op.request.receivedAt, data: asBuffer(op.request.body), meta };
    const messages = appended.get(op.streamId);
    if (messages) messages.push(message);
    else appended.set(op.streamId, [message]);
  });
  return { appended, otherChanges };
}
