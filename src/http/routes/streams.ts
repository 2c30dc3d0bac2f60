/*
 * The Durable Streams protocol under /v1/stream/<name>: reads of every stream (general
 * streams and inbox events), creation and deletion of general streams (appends are
 * served ahead of the router, see http/append-handler.ts). The routes live in their
 * own Fastify scope, which takes any body as raw bytes and adds the browser headers
 * (nosniff, CORP, CORS) to every reply, errors included.
 */
import type { FastifyInstance } from "fastify";
import { TailhookError } from "../../core/errors.js";
import { formatCompactHeader } from "../../core/compaction.js";
import { formatOffset } from "../../core/offsets.js";
import type { HttpContext } from "../context.js";
import { REQUEST_HEADERS } from "../protocol/headers.js";
import { openForRead } from "../protocol/stream-access.js";
import { browserHeaders } from "../protocol/browser-headers.js";
import { catchUp, longPoll, serveSse } from "../protocol/stream-read.js";
import { createStream, deleteStream } from "../protocol/stream-write.js";

const URL_PATTERN = "/v1/stream/*";
export function registerStreamRoutes(app: FastifyInstance, ctx: HttpContext): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: ctx.config.maxBodyBytes }, (_request, body, done) => done(null, body));
    scope.addHook("onSend", async (request, reply, payload) => {
      reply.headers(browserHeaders(request.headers.origin !== undefined));
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
      if (live === "long-poll" || live === "sse") ctx.metrics.trackReader(live, reply.raw);
      if (live === "long-poll") return longPoll(ctx, request, reply, target);
      if (live === "sse") return serveSse(ctx, request, reply, target);
      throw new TailhookError("bad_request", `unknown live mode: ${live}`);
    });
    scope.head(URL_PATTERN, async (request, reply) => {
      const { stream } = await openForRead(ctx, request, false);
      reply.headers({ "content-type": stream.contentType, "cache-control": "no-store" });
      reply.header("stream-next-offset", formatOffset(stream.tailSeq));
      if (stream.closed) reply.header("stream-closed", "true");
      if (stream.stateProtocol !== null) reply.header("stream-state", stream.stateProtocol);
      if (stream.compaction) reply.header("stream-compact", formatCompactHeader(stream.compaction));
      if (stream.ttlSeconds !== null) reply.header("stream-ttl", String(stream.ttlSeconds));
      if (stream.expiresAt !== null) reply.header("stream-expires-at", new Date(stream.expiresAt).toISOString());
      return reply.send();
    });
    scope.put(URL_PATTERN, (request, reply) => createStream(ctx, request, reply));
    // POST (append) is served ahead of the router: see http/append-handler.ts.
    scope.delete(URL_PATTERN, (request, reply) => deleteStream(ctx, request, reply));
  });
}
