/*
 * Reading a stream (protocol §5.6-5.8): catch-up, long-poll and SSE, for general
 * streams and inbox streams alike. Every read starts from an offset (or a consumer's
 * committed position), pages through the store, and tells the reader where to resume,
 * whether it is caught up, and whether the stream has ended (closed).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import { nextCursor } from "../../core/cursor.js";
import { formatOffset, formatReadOffset } from "../../core/offsets.js";
import { parseConsumerName } from "../../core/consumers.js";
import type { StreamInfo } from "../../core/types.js";
import { readPage, type Page } from "../../live/pages.js";
import type { HttpContext } from "../context.js";
import { abortOnClose, controlEvent, KEEP_ALIVE, SSE_HEADERS, writeAndDrain, type ControlEvent } from "../sse.js";
import { resolveReadStart, streamGoneError, type ReadStart } from "../stream-reads.js";
import { behindHorizon, startView } from "../../core/compaction.js";
import { emptyBody, isBinaryForSse, responseBody, sseDataEventFor } from "./bodies.js";
import { browserHeaders } from "./browser-headers.js";
import type { StreamTarget } from "./stream-access.js";
import { isSnapshotOffset } from "../../core/state/snapshot.js";
import { positionOf, sendSnapshotPage, writeSnapshotEvents } from "./snapshot-read.js";

interface ReadQuery {
  offset?: string | string[];
  consumer?: string;
  live?: string;
  cursor?: string;
}

function offsetParam(query: ReadQuery): string | undefined {
  if (Array.isArray(query.offset)) throw new TailhookError("bad_request", "send one offset");
  return query.offset;
}

function cacheControl(target: StreamTarget): string {
  return `${target.public ? "public" : "private"}, max-age=60, stale-while-revalidate=300`;
}

/** What a 200 reply shows: a page's messages and where they end. */
type Shown = Pick<Page, "messages" | "lastSeq" | "upToDate">;

function etag(stream: StreamInfo, startSeq: number, page: Shown): string {
  return `"${stream.id}:${formatOffset(startSeq)}:${formatOffset(page.lastSeq)}${stream.closed ? ":c" : ""}"`;
}

/** Closed and read to the end: the reader has seen everything there will ever be. */
function atEnd(stream: StreamInfo, lastSeq: number): boolean {
  return stream.closed && lastSeq >= stream.tailSeq;
}

/**
 * Where a read starts: after `offset`, or, reading as `consumer` without an offset,
 * after that consumer's committed offset (the consumer is created at the start of the
 * retained events on first use). A consumer behind retention is told "gone".
 */
async function startOf(ctx: HttpContext, stream: StreamInfo, query: ReadQuery): Promise<ReadStart> {
  const offset = offsetParam(query);
  if (query.consumer === undefined) return resolveReadStart(stream, offset);
  const name = parseConsumerName(query.consumer);
  const consumer = (await ctx.store.getConsumer(stream.id, name)) ?? (await ctx.store.ensureConsumer(stream.id, name, stream.firstSeq - 1));
  ctx.store.markConsumerSeen(stream.id, name).catch((error: unknown) => ctx.logger.warn({ err: error }, "consumer not marked seen"));
  if (offset !== undefined) return resolveReadStart(stream, offset);
  // A consumer that never acked, still at the start, reads the compacted log; acked positions carry no view.
  if (consumer.lastAckAt === null && consumer.committedSeq === stream.firstSeq - 1) {
    return { afterSeq: stream.firstSeq - 1, view: startView(stream, stream.firstSeq - 1) };
  }
  if (consumer.committedSeq < stream.firstSeq - 1 || behindHorizon(stream, consumer.committedSeq, undefined)) throw streamGoneError(stream);
  return { afterSeq: Math.min(consumer.committedSeq, stream.tailSeq), view: undefined };
}

/** "-1" means the earliest retained message, wherever retention has moved it meanwhile. */
function readsFromStart(query: ReadQuery): boolean {
  return query.consumer === undefined && (offsetParam(query) ?? "-1") === "-1";
}

/**
 * The first page of a catch-up read. When retention moves the earliest message forward
 * between finding the start and reading, a read from "-1" starts again at the new
 * earliest instead of failing.
 */
async function firstPage(ctx: HttpContext, stream: StreamInfo, start: ReadStart, query: ReadQuery) {
  const page = await readPage(ctx.store, stream, start.afterSeq, undefined, start.view);
  if (page.kind === "page") return { stream, startSeq: start.afterSeq, page };
  if (!readsFromStart(query)) throw streamGoneError(stream, page.earliestSeq);
  const current = (await ctx.store.getStreamById(stream.id)) ?? stream;
  const restart = current.firstSeq - 1;
  const again = await readPage(ctx.store, current, restart, undefined, startView(current, restart));
  if (again.kind === "gone") throw streamGoneError(current, again.earliestSeq);
  return { stream: current, startSeq: restart, page: again };
}

function positionHeaders(stream: StreamInfo, nextSeq: number, upToDate: boolean): Record<string, string> {
  const headers: Record<string, string> = { "stream-next-offset": formatReadOffset(nextSeq, stream.horizonSeq) };
  if (upToDate || atEnd(stream, nextSeq)) headers["stream-up-to-date"] = "true";
  if (atEnd(stream, nextSeq)) headers["stream-closed"] = "true";
  if (stream.stateProtocol !== null) headers["stream-state"] = stream.stateProtocol;
  return headers;
}

function sendPage(
  reply: FastifyReply,
  target: StreamTarget,
  startSeq: number,
  page: Shown,
  cursor: string | undefined,
  ifNoneMatch: unknown,
) {
  const { stream } = target;
  const tag = etag(stream, startSeq, page);
  reply.headers({ "content-type": stream.contentType, etag: tag, "cache-control": cacheControl(target) });
  reply.headers(positionHeaders(stream, page.lastSeq, page.upToDate));
  if (cursor !== undefined) reply.header("stream-cursor", cursor);
  if (ifNoneMatch === tag) return reply.code(304).send();
  return reply.code(200).send(responseBody(stream, page.messages));
}

function sendEmptyAtTail(reply: FastifyReply, stream: StreamInfo, seq: number, status: 200 | 204, cursor?: string) {
  reply.code(status).headers({ "content-type": stream.contentType, "cache-control": "no-store" });
  reply.headers(positionHeaders(stream, seq, true));
  if (cursor !== undefined && !stream.closed) reply.header("stream-cursor", cursor);
  return status === 204 ? reply.send() : reply.send(Buffer.from(emptyBody(stream)));
}

export async function catchUp(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, target: StreamTarget) {
  const query = request.query as ReadQuery;
  const { stream } = target;
  const offset = offsetParam(query);
  if (isSnapshotOffset(offset)) return sendSnapshotPage(ctx, reply, stream, offset!);
  if (offset === "now") return sendEmptyAtTail(reply, stream, (await startOf(ctx, stream, query)).afterSeq, 200);
  const first = await firstPage(ctx, stream, await startOf(ctx, stream, query), query);
  const read = { ...target, stream: first.stream };
  return sendPage(reply, read, first.startSeq, first.page, nextCursor(query.cursor), request.headers["if-none-match"]);
}

function deletedError(soft: boolean): TailhookError {
  if (soft) return new TailhookError("gone", "the stream was deleted; its forks still read its data");
  return new TailhookError("not_found", "the stream was deleted");
}

export async function longPoll(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, target: StreamTarget) {
  const query = request.query as ReadQuery;
  if (offsetParam(query) === undefined && query.consumer === undefined) {
    throw new TailhookError("bad_request", "long-poll needs an offset or a consumer");
  }
  const offset = offsetParam(query);
  if (isSnapshotOffset(offset)) return sendSnapshotPage(ctx, reply, target.stream, offset!);
  let stream = target.stream;
  let { afterSeq: startSeq, view } = await startOf(ctx, stream, query);
  let mayRestart = readsFromStart(query);
  const cursor = nextCursor(query.cursor);
  const signal = abortOnClose(reply.raw);
  follow: for (;;) {
    const idleMs = () => ctx.config.longPollTimeoutMs;
    for await (const item of ctx.live.follow(stream.id, { afterSeq: startSeq, view, idleMs, signal })) {
      switch (item.kind) {
        case "page":
          return sendPage(reply, { ...target, stream: item.stream }, startSeq, item, cursor, undefined);
        case "up-to-date":
          stream = item.stream;
          continue;
        case "closed":
          return sendEmptyAtTail(reply, item.stream, startSeq, 204, cursor);
        case "deleted":
          throw deletedError(item.soft);
        case "gone":
          if (!mayRestart) throw streamGoneError(stream, item.earliestSeq);
          // Read from "-1" while retention or compaction moved things: start again from the start as it is now, once.
          mayRestart = false;
          stream = (await ctx.store.getStreamById(stream.id)) ?? stream;
          ({ afterSeq: startSeq, view } = resolveReadStart(stream, "-1"));
          continue follow;
        case "idle":
        case "shutdown":
          return sendEmptyAtTail(reply, stream, startSeq, 204, cursor);
      }
    }
    return sendEmptyAtTail(reply, stream, startSeq, 204, cursor);
  }
}

function control(stream: StreamInfo, lastSeq: number, upToDate: boolean, cursor: string): ControlEvent {
  const event: ControlEvent = { streamNextOffset: formatReadOffset(lastSeq, stream.horizonSeq) };
  if (atEnd(stream, lastSeq)) return { ...event, upToDate: true, streamClosed: true };
  return upToDate ? { ...event, streamCursor: cursor, upToDate: true } : { ...event, streamCursor: cursor };
}

export async function serveSse(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, target: StreamTarget) {
  const query = request.query as ReadQuery;
  if (offsetParam(query) === undefined && query.consumer === undefined) {
    throw new TailhookError("bad_request", "SSE needs an offset or a consumer");
  }
  const { stream } = target;
  const offset = offsetParam(query);
  const snapshotOffset = isSnapshotOffset(offset) ? offset! : undefined;
  // A bad snapshot offset is a 400 before the event stream starts.
  if (snapshotOffset !== undefined) positionOf(stream, snapshotOffset);
  const start = snapshotOffset === undefined ? await startOf(ctx, stream, query) : undefined;
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    ...browserHeaders(request.headers.origin !== undefined),
    ...SSE_HEADERS,
    ...(isBinaryForSse(stream) ? { "stream-sse-data-encoding": "base64" } : {}),
  });
  const closeAt = Date.now() + ctx.config.sseMaxConnectionMs;
  const idleMs = () => Math.max(0, Math.min(ctx.config.sseKeepAliveMs, closeAt - Date.now()));
  let cursor = query.cursor;
  let sentControl = false;
  let sentEnd = false;
  const sendControl = (current: StreamInfo, seq: number, upToDate: boolean) => {
    cursor = nextCursor(cursor);
    sentControl = true;
    sentEnd = atEnd(current, seq);
    return writeAndDrain(res, controlEvent(control(current, seq, upToDate, cursor)));
  };
  try {
    // The key frame first, then the deltas after X on the same connection.
    const write = (text: string) => writeAndDrain(res, text);
    const afterSeq =
      start?.afterSeq ?? (await writeSnapshotEvents(ctx, write, stream, snapshotOffset!, () => (cursor = nextCursor(cursor))));
    for await (const item of ctx.live.follow(stream.id, { afterSeq, view: start?.view, idleMs, signal: abortOnClose(res) })) {
      if (item.kind === "page") {
        await writeAndDrain(res, sseDataEventFor(item.stream, item.messages));
        await sendControl(item.stream, item.lastSeq, item.upToDate);
      } else if (item.kind === "up-to-date") {
        // The first control goes out even when there is nothing to send yet.
        if (!sentControl) await sendControl(item.stream, item.seq, true);
      } else if (item.kind === "idle") {
        if (Date.now() >= closeAt) break;
        await writeAndDrain(res, KEEP_ALIVE);
      } else {
        if (item.kind === "closed" && !sentEnd) await sendControl(item.stream, item.seq, true);
        // Closed, gone, deleted or shutting down: end the stream; a reconnect gets its status.
        break;
      }
    }
  } catch (error) {
    // Store trouble mid-stream: end the stream; the client reconnects from its last offset. A bug is logged loud.
    ctx.logger[ctx.store.isFailure(error) ? "debug" : "error"]({ err: error }, "SSE stream ended early");
  }
  res.end();
}
