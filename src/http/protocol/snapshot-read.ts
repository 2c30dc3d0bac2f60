/*
 * Snapshot reads over HTTP (docs/key-frames.md): `offset=snapshot` answers the first
 * page of the state as of X (the tail now), framed by snapshot-start and snapshot-end;
 * Stream-Next-Offset is a cursor while pages remain and X on the last one, so an
 * ordinary reader goes on with the deltas after X. Long-poll reads of a snapshot answer
 * at once, like catch-up reads: a snapshot page is never empty. SSE and WebSocket
 * follow the pages, then the deltas (LiveStreams.follow's snapshot mode); the pages
 * themselves are read in live/snapshot-pages.ts for every transport.
 */
import type { FastifyReply } from "fastify";
import type { StreamInfo } from "../../core/types.js";
import { readSnapshotPage, snapshotPositionOf } from "../../live/snapshot-pages.js";
import type { HttpContext } from "../context.js";
import { controlEvent } from "../sse.js";
import { sseDataEventFor } from "./bodies.js";

export function jsonArray(messages: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from("[")];
  messages.forEach((message, index) => parts.push(...(index === 0 ? [message] : [Buffer.from(","), message])));
  parts.push(Buffer.from("]"));
  return Buffer.concat(parts);
}

export async function sendSnapshotPage(ctx: HttpContext, reply: FastifyReply, stream: StreamInfo, offset: string) {
  const page = await readSnapshotPage(ctx.store, stream, snapshotPositionOf(stream, offset), ctx.snapshotPageKeys);
  // Pages are not cached: the first one's X moves with the tail, the last one's up-to-date with it too.
  reply.code(200).headers({ "content-type": stream.contentType, "cache-control": "no-store" });
  if (stream.stateProtocol !== null) reply.header("stream-state", stream.stateProtocol);
  reply.header("stream-next-offset", page.nextOffset);
  const atTail = page.done && page.asOfSeq >= stream.tailSeq;
  if (atTail) reply.header("stream-up-to-date", "true");
  if (atTail && stream.closed) reply.header("stream-closed", "true");
  return reply.send(jsonArray(page.messages));
}

/** One snapshot page as SSE: a data event and a control event whose streamNextOffset is the page's next offset. */
export function snapshotSseEvents(stream: StreamInfo, messages: Buffer[], nextOffset: string, streamCursor: string): string {
  const data = sseDataEventFor(
    stream,
    messages.map((message) => ({ seq: 0, createdAt: 0, data: message, meta: null })),
  );
  return data + controlEvent({ streamNextOffset: nextOffset, streamCursor });
}
