/*
 * Snapshot reads of a state stream (docs/key-frames.md): `offset=snapshot` answers the
 * first page of the state as of X (the tail now), framed by snapshot-start and
 * snapshot-end; Stream-Next-Offset is a cursor while pages remain and X on the last
 * one, so an ordinary reader goes on with the deltas after X. Long-poll reads of a
 * snapshot answer at once, like catch-up reads: a snapshot page is never empty. SSE
 * sends every page as a data event with its control event, then follows from X.
 */
import type { FastifyReply } from "fastify";
import { messageJson } from "../../core/capture.js";
import { TailhookError } from "../../core/errors.js";
import { formatOffset } from "../../core/offsets.js";
import {
  formatSnapshotCursor,
  parseSnapshotCursor,
  SNAPSHOT_OFFSET,
  snapshotControl,
  snapshotInsert,
  type SnapshotPage,
  type SnapshotPosition,
  type SnapshotValue,
} from "../../core/state/snapshot.js";
import { streamGoneError } from "../stream-reads.js";
import type { StreamInfo } from "../../core/types.js";
import { PAGE_LIMITS } from "../../live/pages.js";
import type { HttpContext } from "../context.js";
import { controlEvent } from "../sse.js";
import { sseDataEventFor } from "./bodies.js";

/** Checks a snapshot offset before a reply starts (an SSE reply cannot turn into a 400 later). */
export function positionOf(stream: StreamInfo, offset: string): SnapshotPosition {
  if (stream.stateProtocol === null && stream.keyFrame === null) {
    throw new TailhookError(
      "bad_request",
      "offset=snapshot reads a state stream (one created with Stream-State: v1) or an inbox stream with settings.keyFrame",
    );
  }
  const keyFrameVersion = stream.keyFrameVersion;
  if (offset === SNAPSHOT_OFFSET) return { streamId: stream.id, asOfSeq: stream.tailSeq, after: null, keyFrameVersion };
  const position = parseSnapshotCursor(offset);
  if (!position) throw new TailhookError("bad_request", `malformed offset: ${offset}`);
  // A cursor of an earlier stream under this name, or of an earlier keyFrame, would mix two states.
  if (position.streamId !== stream.id || position.asOfSeq > stream.tailSeq || position.keyFrameVersion !== keyFrameVersion) {
    throw new TailhookError("bad_request", "the snapshot cursor is not one of this stream's; start again with offset=snapshot");
  }
  // Compaction passed X: the values as of X may be gone, so this snapshot cannot be finished exactly.
  if (position.asOfSeq < stream.horizonSeq) throw streamGoneError(stream);
  return position;
}

/** A fresh snapshot whose X a concurrent pass overtook starts again at the new tail, this many times at most. */
const FRESH_SNAPSHOT_TRIES = 5;

/** The body of one snapshot page and where the reader goes next. */
export async function readSnapshotPage(ctx: HttpContext, stream: StreamInfo, offset: string) {
  let current = stream;
  for (let tries = 1; ; tries++) {
    const position = positionOf(current, offset);
    const page = await ctx.store.readSnapshotPage(current.id, {
      asOfSeq: position.asOfSeq,
      after: position.after,
      maxKeys: ctx.snapshotPageKeys ?? PAGE_LIMITS.maxMessages,
      maxBytes: PAGE_LIMITS.maxBytes,
    });
    if (page.horizonSeq <= position.asOfSeq) return framePage(current, position, page);
    const latest = await ctx.store.getStreamById(current.id);
    if (offset !== SNAPSHOT_OFFSET || tries >= FRESH_SNAPSHOT_TRIES || !latest) {
      throw streamGoneError({ ...(latest ?? current), horizonSeq: page.horizonSeq });
    }
    current = latest;
  }
}

function framePage(stream: StreamInfo, position: SnapshotPosition, page: SnapshotPage) {
  const { asOfSeq, after } = position;
  const asOf = formatOffset(asOfSeq);
  const messages = page.values.map(stream.stateProtocol !== null ? snapshotInsert : eventEnvelope);
  if (after === null) messages.unshift(snapshotControl("snapshot-start", asOf));
  if (page.done) messages.push(snapshotControl("snapshot-end", asOf));
  const nextOffset = page.done || page.last === null ? asOf : formatSnapshotCursor({ ...position, after: page.last });
  return { messages, nextOffset, done: page.done, asOfSeq };
}

/** An inbox snapshot holds each entity's latest event exactly as a delta read shows it. */
function eventEnvelope(value: SnapshotValue): Buffer {
  return Buffer.from(messageJson(value));
}

function jsonArray(messages: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from("[")];
  messages.forEach((message, index) => parts.push(...(index === 0 ? [message] : [Buffer.from(","), message])));
  parts.push(Buffer.from("]"));
  return Buffer.concat(parts);
}

export async function sendSnapshotPage(ctx: HttpContext, reply: FastifyReply, stream: StreamInfo, offset: string) {
  const page = await readSnapshotPage(ctx, stream, offset);
  // Pages are not cached: the first one's X moves with the tail, the last one's up-to-date with it too.
  reply.code(200).headers({ "content-type": stream.contentType, "cache-control": "no-store" });
  if (stream.stateProtocol !== null) reply.header("stream-state", stream.stateProtocol);
  reply.header("stream-next-offset", page.nextOffset);
  const atTail = page.done && page.asOfSeq >= stream.tailSeq;
  if (atTail) reply.header("stream-up-to-date", "true");
  if (atTail && stream.closed) reply.header("stream-closed", "true");
  return reply.send(jsonArray(page.messages));
}

/**
 * A whole snapshot as SSE: each page a data event and a control event whose
 * streamNextOffset is the page's next offset. Returns X, where following goes on.
 */
export async function writeSnapshotEvents(
  ctx: HttpContext,
  write: (text: string) => Promise<void>,
  stream: StreamInfo,
  offset: string,
  nextStreamCursor: () => string,
): Promise<number> {
  for (let next = offset; ;) {
    const page = await readSnapshotPage(ctx, stream, next);
    const messages = page.messages.map((data) => ({ seq: 0, createdAt: 0, data, meta: null }));
    await write(sseDataEventFor(stream, messages));
    await write(controlEvent({ streamNextOffset: page.nextOffset, streamCursor: nextStreamCursor() }));
    if (page.done) return page.asOfSeq;
    next = page.nextOffset;
  }
}
