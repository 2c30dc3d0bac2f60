/*
 * The Durable Streams read API under /v1/stream/<name>: HEAD, catch-up GET, long-poll
 * and SSE, in JSON mode. An inbox's events are the stream "inbox/<inbox-id>".
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import { nextCursor } from "../../core/cursor.js";
import { formatOffset } from "../../core/offsets.js";
import type { StreamInfo } from "../../core/types.js";
import { presentedToken } from "../auth.js";
import { INBOX_STREAM_PREFIX, type HttpContext } from "../context.js";
import { controlEvent, dataEvent, KEEP_ALIVE, writeAndDrain } from "../sse.js";
import { goneError, jsonArrayBody, readPage, resolveStart, type Page } from "../stream-reads.js";
import { parseConsumerName } from "../../core/consumers.js";

interface ReadQuery {
  offset?: string;
  consumer?: string;
  live?: string;
  cursor?: string;
  token?: string;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "cross-origin-resource-policy": "cross-origin",
};
const CACHEABLE = "private, max-age=60, stale-while-revalidate=300";

async function openStream(ctx: HttpContext, request: FastifyRequest): Promise<StreamInfo> {
  const name = (request.params as { "*": string })["*"];
  const token = presentedToken(request.headers, request.query as Record<string, unknown>);
  if (!name.startsWith(INBOX_STREAM_PREFIX)) {
    ctx.auth.requireAdmin(token);
    throw new TailhookError("not_found", "no such stream");
  }
  const inbox = await ctx.store.getInbox(name.slice(INBOX_STREAM_PREFIX.length));
  ctx.auth.requireInboxReader(token, inbox);
  const stream = inbox && (await ctx.store.getStreamById(inbox.streamId));
  if (!stream) throw new TailhookError("not_found", "no such stream");
  return stream;
}

function etag(stream: StreamInfo, startSeq: number, page: Page): string {
  return `"${stream.id}:${formatOffset(startSeq)}:${formatOffset(page.lastSeq)}${stream.closed ? ":c" : ""}"`;
}

function sendPage(
  reply: FastifyReply,
  stream: StreamInfo,
  startSeq: number,
  page: Page,
  cursor: string | undefined,
  ifNoneMatch: string | undefined,
): FastifyReply {
  const tag = etag(stream, startSeq, page);
  reply.headers({
    ...SECURITY_HEADERS,
    "content-type": stream.contentType,
    "stream-next-offset": formatOffset(page.lastSeq),
    etag: tag,
    "cache-control": CACHEABLE,
  });
  if (page.upToDate) reply.header("stream-up-to-date", "true");
  if (cursor !== undefined) reply.header("stream-cursor", cursor);
  if (ifNoneMatch === tag) return reply.code(304).send();
  return reply.code(200).send(jsonArrayBody(page.messages));
}

/**
 * Where a read starts: after `offset`, or, reading as `consumer` without an offset,
 * after that consumer's committed offset (the consumer is created at the start of the
 * retained events on first use). A consumer behind retention is told "gone".
 */
async function startSeqOf(ctx: HttpContext, stream: StreamInfo, query: ReadQuery): Promise<number> {
  if (query.consumer === undefined) return resolveStart(stream, query.offset);
  const name = parseConsumerName(query.consumer);
  const consumer =
    (await ctx.store.getConsumer(stream.id, name)) ?? (await ctx.store.ensureConsumer(stream.id, name, stream.firstSeq - 1));
  ctx.store.markConsumerSeen(stream.id, name).catch((error: unknown) => ctx.logger.warn({ err: error }, "consumer not marked seen"));
  if (query.offset !== undefined) return resolveStart(stream, query.offset);
  if (consumer.committedSeq < stream.firstSeq - 1) throw goneError(stream);
  return Math.min(consumer.committedSeq, stream.tailSeq);
}

async function catchUp(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, stream: StreamInfo) {
  const query = request.query as ReadQuery;
  const startSeq = await startSeqOf(ctx, stream, query);
  if (query.offset === "now") {
    return reply
      .headers({ ...SECURITY_HEADERS, "content-type": stream.contentType, "cache-control": "no-store" })
      .headers({ "stream-next-offset": formatOffset(startSeq), "stream-up-to-date": "true" })
      .send("[]");
  }
  const page = await readPage(ctx.store, stream, startSeq);
  return sendPage(reply, stream, startSeq, page, nextCursor(query.cursor), request.headers["if-none-match"]);
}

async function currentTail(ctx: HttpContext, streamId: number): Promise<number | undefined> {
  return (await ctx.store.getStreamById(streamId))?.tailSeq;
}

/** Aborts when the client goes away before its reply is complete. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => controller.abort());
  return controller.signal;
}

async function longPoll(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, stream: StreamInfo) {
  const query = request.query as ReadQuery;
  if (query.offset === undefined && query.consumer === undefined) {
    throw new TailhookError("bad_request", "long-poll needs an offset or a consumer");
  }
  const startSeq = await startSeqOf(ctx, stream, query);
  let page = await readPage(ctx.store, stream, startSeq);
  if (page.messages.length === 0) {
    const outcome = await ctx.waiters.waitAfterCheck(stream.id, startSeq, ctx.config.longPollTimeoutMs, abortOnClose(reply), () =>
      currentTail(ctx, stream.id),
    );
    if (outcome === "data") {
      const current = (await ctx.store.getStreamById(stream.id)) ?? stream;
      page = await readPage(ctx.store, current, startSeq);
    }
  }
  const cursor = nextCursor(query.cursor);
  if (page.messages.length === 0) {
    return reply
      .code(204)
      .headers({ ...SECURITY_HEADERS, "cache-control": "no-store", "stream-cursor": cursor })
      .headers({ "stream-next-offset": formatOffset(startSeq), "stream-up-to-date": "true" })
      .send();
  }
  return sendPage(reply, stream, startSeq, page, cursor, undefined);
}

async function serveSse(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply, stream: StreamInfo) {
  const query = request.query as ReadQuery;
  let afterSeq = await startSeqOf(ctx, stream, query);
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const signal = abortOnClose(reply);
  const closeAt = Date.now() + ctx.config.sseMaxConnectionMs;
  let cursor = query.cursor;
  let sentControl = false;
  try {
    while (!signal.aborted) {
      const current = (await ctx.store.getStreamById(stream.id)) ?? stream;
      const page = await readPage(ctx.store, current, afterSeq);
      if (page.messages.length > 0) await writeAndDrain(res, dataEvent(page.messages));
      if (page.messages.length > 0 || !sentControl) {
        afterSeq = page.lastSeq;
        cursor = nextCursor(cursor);
        const control = { streamNextOffset: formatOffset(afterSeq), streamCursor: cursor };
        await writeAndDrain(res, controlEvent(page.upToDate ? { ...control, upToDate: true } : control));
        sentControl = true;
      }
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

export function registerStreamRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.route({
    method: "GET",
    url: "/v1/stream/*",
    handler: async (request, reply) => {
      const stream = await openStream(ctx, request);
      const live = (request.query as ReadQuery).live;
      if (live === undefined) return catchUp(ctx, request, reply, stream);
      if (live === "long-poll") return longPoll(ctx, request, reply, stream);
      if (live === "sse") return serveSse(ctx, request, reply, stream);
      throw new TailhookError("bad_request", `unknown live mode: ${live}`);
    },
  });
  app.route({
    method: "HEAD",
    url: "/v1/stream/*",
    handler: async (request, reply) => {
      const stream = await openStream(ctx, request);
      return reply
        .headers({ ...SECURITY_HEADERS, "content-type": stream.contentType, "cache-control": "no-store" })
        .header("stream-next-offset", formatOffset(stream.tailSeq))
        .send();
    },
  });
  for (const method of ["PUT", "POST", "DELETE"] as const) {
    app.route({
      method,
      url: "/v1/stream/*",
      handler: async (request) => {
        await openStream(ctx, request);
        throw new TailhookError("method_not_allowed", "an inbox stream is written only by its webhooks");
      },
    });
  }
}
