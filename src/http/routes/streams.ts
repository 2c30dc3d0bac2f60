/*
 * The Durable Streams protocol under /v1/stream/<name>: reads of every stream (general
 * streams and inbox events) and writes of general streams. The routes live in their
 * own Fastify scope, which takes any body as raw bytes and adds the browser headers
 * (nosniff, CORP, CORS) to every reply, errors included.
 */
import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";
import { toErrorReply } from "../errors.js";
import { TailhookError } from "../../core/errors.js";
import { formatOffset } from "../../core/offsets.js";
import type { HttpContext } from "../context.js";
import { REQUEST_HEADERS } from "../protocol/headers.js";
import { openForRead } from "../protocol/stream-access.js";
import { catchUp, CORS_HEADERS, longPoll, SECURITY_HEADERS, serveSse } from "../protocol/stream-read.js";
import { appendStream, createStream, deleteStream } from "../protocol/stream-write.js";

const URL_PATTERN = "/v1/stream/*";
/** How much of a refused (too large) body is read and dropped so the client gets to see the 413. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;
const DISCARD_TIMEOUT_MS = 10_000;

/**
 * A client still sending a body we refused would get a reset instead of our reply:
 * read and drop the rest (bounded), then answer and close the connection.
 */
function discardBody(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const finish = () => {
      clearTimeout(timer);
      req.off("data", onData);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DISCARD_LIMIT_BYTES) finish();
    };
    const timer = setTimeout(finish, DISCARD_TIMEOUT_MS);
    req.on("data", onData).once("end", finish).once("error", finish).once("close", finish);
    req.resume();
  });
}

export function registerStreamRoutes(app: FastifyInstance, ctx: HttpContext): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: ctx.config.maxBodyBytes }, (_request, body, done) => done(null, body));
    scope.setErrorHandler(async (error, request, reply) => {
      const errorReply = toErrorReply(error);
      if (errorReply.status === 413) {
        await discardBody(request.raw);
        reply.header("connection", "close");
      }
      if (errorReply.status >= 500) ctx.logger.error({ err: error, method: request.method }, "stream request failed");
      return reply.code(errorReply.status).headers(errorReply.headers).send(errorReply.body);
    });
    scope.addHook("onSend", async (_request, reply, payload) => {
      reply.headers({ ...SECURITY_HEADERS, ...CORS_HEADERS });
      return payload;
    });

    scope.options(URL_PATTERN, async (_request, reply) =>
      reply
        .code(204)
        .headers({
          "access-control-allow-methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
          "access-control-allow-headers": REQUEST_HEADERS,
          "access-control-max-age": "86400",
        })
        .send(),
    );
    scope.get(URL_PATTERN, async (request, reply) => {
      const target = await openForRead(ctx, request);
      const live = (request.query as { live?: string }).live;
      if (live === undefined) return catchUp(ctx, request, reply, target);
      if (live === "long-poll") return longPoll(ctx, request, reply, target);
      if (live === "sse") return serveSse(ctx, request, reply, target);
      throw new TailhookError("bad_request", `unknown live mode: ${live}`);
    });
    scope.head(URL_PATTERN, async (request, reply) => {
      const { stream } = await openForRead(ctx, request, false);
      reply.headers({ "content-type": stream.contentType, "cache-control": "no-store" });
      reply.header("stream-next-offset", formatOffset(stream.tailSeq));
      if (stream.closed) reply.header("stream-closed", "true");
      if (stream.ttlSeconds !== null) reply.header("stream-ttl", String(stream.ttlSeconds));
      if (stream.expiresAt !== null) reply.header("stream-expires-at", new Date(stream.expiresAt).toISOString());
      return reply.send();
    });
    scope.put(URL_PATTERN, (request, reply) => createStream(ctx, request, reply));
    scope.post(URL_PATTERN, (request, reply) => appendStream(ctx, request, reply));
    scope.delete(URL_PATTERN, (request, reply) => deleteStream(ctx, request, reply));
  });
}
