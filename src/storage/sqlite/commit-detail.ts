/*
 * What a committed batch wrote, told to live readers without reading it back: the
 * main thread still holds each appended event (the op it sent: body, receivedAt and
 * the meta string the writer stored; for a Durable Streams append its messages and
 * time), so the messages are rebuilt from the ops and their results. Only plain
 * appends are handed on; any op that may change a stream otherwise (retention,
 * compaction, settings, touches, deletes) marks the commit, and readers then read the
 * store again.
 */
import type { StoredMessage } from "../../core/types.js";
import type { AppendedMessages, CommitDetail } from "../store.js";
import type { WriteOp, WriteResult } from "./write-ops.js";

/**
 * Ops whose only change to a stream's row is its tail (reported as extended), its
 * touchedAt (appendStream), or none. appendStream reports closing and expiry as a
 * wake-all tail, so a reader of that stream reads the store.
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

/** An inbox event as a store read gives it: the meta is never undefined for an append; if it were, the gap makes readers read. */
function eventMessages(op: Extract<WriteOp, { kind: "appendEvent" }>, result: WriteResult | undefined): StoredMessage[] {
  if (result?.status !== "appended") return [];
  const meta = result.meta ?? op.meta;
  return meta === undefined ? [] : [{ seq: result.seq, createdAt: op.request.receivedAt, data: asBuffer(op.request.body), meta }];
}

/** A Durable Streams append's stream and messages, numbered up to the tail the writer reported. */
function streamAppend(op: Extract<WriteOp, { kind: "appendStream" }>, result: WriteResult | undefined) {
  if (result?.status !== "stream" || result.result.status !== "appended") return undefined;
  const { messages } = op.request;
  const { id, tailSeq } = result.result.stream;
  const firstSeq = tailSeq - messages.length + 1;
  return {
    streamId: id,
    messages: messages.map((data, index): StoredMessage => ({
      seq: firstSeq + index,
      createdAt: op.now,
      data: asBuffer(data),
      meta: null,
    })),
  };
}

export function commitDetail(ops: readonly WriteOp[], results: readonly WriteResult[]): CommitDetail {
  return {
    otherChanges: ops.some((op) => !TAIL_ONLY.has(op.kind)),
    appendedTo(streamId) {
      const appended: AppendedMessages = { messages: [] };
      ops.forEach((op, index) => {
        if (op.kind === "appendEvent" && op.streamId === streamId) appended.messages.push(...eventMessages(op, results[index]));
        if (op.kind !== "appendStream") return;
        const append = streamAppend(op, results[index]);
        if (append?.streamId !== streamId || append.messages.length === 0) return;
        appended.messages.push(...append.messages);
        // The writer stores the append's time as touchedAt (never earlier than before).
        appended.touchedAt = op.now;
      });
      return appended.messages.length > 0 ? appended : undefined;
    },
  };
}
