/*
 * Reading a stream (protocol §5.6-5.8): catch-up, long-poll and SSE, for general
 * streams and inbox streams alike. Every read starts from an offset (or a consumer's
 * committed position), pages through the store, and tells the reader where to resume,
 * whether it is caught up, and whether the stream has ended (closed).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import { nextCursor } from "../../core/cursor.js";
import { formatOffset } from "../../core/offsets.js";
import { parseConsumerName } from "../../core/consumers.js";
import type { StreamInfo } from "../../core/types.js";
import type { HttpContext } from "../context.js";
import { controlEvent, KEEP_ALIVE, writeAndDrain, type ControlEvent } from "../sse.js";
import { goneError, readPage, resolveStart, type Page } from "../stream-reads.js";
import { emptyBody, isBinaryForSse, responseBody, sseDataEventFor } from "./bodies.js";
import { browserHeaders } from "./browser-headers.js";
import type { StreamTarget } from "./stream-access.js";

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

function etag(stream: StreamInfo, startSeq: number, page: Page): string {
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
async function startSeqOf(ctx: HttpContext, stream: StreamInfo, query: ReadQuery): Promise<number> {
  const offset = offsetParam(query);
  if (query.consumer === undefined) return resolveStart(stream, offset);
  const name = parseConsumerName(query.consumer);
  const consumer =
    (await ctx.store.getConsumer(stream.id, name)) ?? (await ctx.store.ensureConsumer(stream.id, name, stream.firstSeq - 1));
  ctx.store.markConsumerSeen(stream.id, name).catch((error: unknown) => ctx.logger.warn({ err: error }, "consumer not marked seen"));
  if (offset !== undefined) return resolveStart(stream, offset);
  if (consumer.committedSeq < stream.firstSeq - 1) throw goneError(stream);
  return Math.min(consumer.committedSeq, stream.tailSeq);
}

/**
 * The first page of a read. "-1" means the earliest retained message: when retention
 * moves that forward between finding the start and reading (a 410 from readPage), the
 * read starts again at the new earliest instead of failing.
 */
async function firstPage(ctx: HttpContext, stream: StreamInfo, startSeq: number, query: ReadQuery) {
  try {
    return { stream, startSeq, page: await readPage(ctx.store, stream, startSeq) };
  } catch (error) {
    const fromStart = query.consumer === undefined && (offsetParam(query) ?? "-1") === "-1";
    if (!fromStart || !(error instanceof TailhookError && error.code === "gone")) throw error;
    const current = (await ctx.store.getStreamById(stream.id)) ?? stream;
    const restart = current.firstSeq - 1;
    return { stream: current, startSeq: restart, page: await readPage(ctx.store, current, restart) };
  }
}

function positionHeaders(stream: StreamInfo, nextSeq: number, upToDate: boolean): Record<string, string> {
  const headers: Record<string, string> = { "stream-next-offset": formatOffset(nextSeq) };
  if (upToDate || atEnd(stream, nextSeq)) headers["stream-up-to-date"] = "true";
  if (atEnd(stream, nextSeq)) headers["stream-closed"] = "true";
  return headers;
}

function sendPage(reply: FastifyReply, target: StreamTarget, startSeq: number, page: Page, cursor: string | undefined, ifNoneMatch: unknown) {
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
  if (offsetParam(query) === "now") return sendEmptyAtTail(reply, stream, await startSeqOf(ctx, stream, query), 200);
  const first = await firstPage(ctx, stream, await startSeqOf(ctx, stream, query), query);
  const read = { ...target, stream: first.stream };
  return sendPage(reply, read, first.startSeq, first.page, nextCursor(query.cursor), request.headers["if-none-match"]);
}

async function currentTail(ctx: HttpContext, streamId: number): Promise<number | undefined> {
  const stream = await ctx.store.getStreamById(streamId);
  // A closed or removed stream has nothing to wait for: report it as moved on.
  if (!stream || stream.closed || stream.softDeleted) return Number.MAX_SAFE_INTEGER;
  return stream.tailSeq;
}

/** Aborts when the client goes away before its reply is complete. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => controller.abort());
  return controller.signal;
}

export async function longPoll(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, target: StreamTarget) {
  const query = request.query as ReadQuery;
  if (offsetParam(query) === undefined && query.consumer === undefined) {
    throw new TailhookError("bad_request", "long-poll needs an offset or a consumer");
  }
  const first = await firstPage(ctx, target.stream, await startSeqOf(ctx, target.stream, query), query);
  let { stream, page } = first;
  const { startSeq } = first;
  const cursor = nextCursor(query.cursor);
  if (page.messages.length === 0 && !stream.closed) {
    const outcome = await ctx.waiters.waitAfterCheck(stream.id, startSeq, ctx.config.longPollTimeoutMs, abortOnClose(reply), () =>
      currentTail(ctx, stream.id),
    );
    if (outcome === "data") {
      const current = await ctx.store.getStreamById(stream.id);
      if (!current) throw new TailhookError("not_found", "the stream was deleted");
      if (current.softDeleted) throw new TailhookError("gone", "the stream was deleted; its forks still read its data");
      stream = current;
      page = await readPage(ctx.store, stream, startSeq);
    }
  }
  if (page.messages.length === 0) return sendEmptyAtTail(reply, stream, startSeq, 204, cursor);
  return sendPage(reply, { ...target, stream }, startSeq, page, cursor, undefined);
}

function control(stream: StreamInfo, lastSeq: number, upToDate: boolean, cursor: string): ControlEvent {
  const event: ControlEvent = { streamNextOffset: formatOffset(lastSeq) };
  if (atEnd(stream, lastSeq)) return { ...event, upToDate: true, streamClosed: true };
  return upToDate ? { ...event, streamCursor: cursor, upToDate: true } : { ...event, streamCursor: cursor };
}

export async function serveSse(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, target: StreamTarget) {
  const query = request.query as ReadQuery;
  if (offsetParam(query) === undefined && query.consumer === undefined) {
    throw new TailhookError("bad_request", "SSE needs an offset or a consumer");
  }
  let stream = target.stream;
  let afterSeq = await startSeqOf(ctx, stream, query);
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    ...browserHeaders(request.headers.origin !== undefined),
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    ...(isBinaryForSse(stream) ? { "stream-sse-data-encoding": "base64" } : {}),
  });
  const signal = abortOnClose(reply);
  const closeAt = Date.now() + ctx.config.sseMaxConnectionMs;
  let cursor = query.cursor;
  let sentControl = false;
  try {
    while (!signal.aborted) {
      const current = await ctx.store.getStreamById(stream.id);
      // Deleted (woken by the delete's commit): end the stream; a reconnect gets 404 or 410.
      if (!current || current.softDeleted) break;
      stream = current;
      const page = await readPage(ctx.store, stream, afterSeq);
      if (page.messages.length > 0) await writeAndDrain(res, sseDataEventFor(stream, page.messages));
      if (page.messages.length > 0 || !sentControl || atEnd(stream, page.lastSeq)) {
        afterSeq = page.lastSeq;
        cursor = nextCursor(cursor);
        await writeAndDrain(res, controlEvent(control(stream, afterSeq, page.upToDate, cursor)));
        sentControl = true;
      }
      if (atEnd(stream, afterSeq)) break;
      if (!page.upToDate) continue;
      const remaining = closeAt - Date.now();
      if (remaining <= 0) break;
      const wait = Math.min(ctx.config.sseKeepAliveMs, remaining);
      const outcome = await ctx.waiters.waitAfterCheck(stream.id, afterSeq, wait, signal, () => currentTail(ctx, stream.id));
      if (outcome === "timeout" && Date.now() < closeAt) await writeAndDrain(res, KEEP_ALIVE);
      if (outcome === "aborted" || outcome === "shutdown") break;
    }
  } catch (error) {
    // Mid-stream trouble (e.g. the offset fell behind retention): end the stream;
    // the client reconnects from its last offset and gets a proper status.
    ctx.logger.debug({ err: error }, "SSE stream ended early");
  }
  res.end();
}
