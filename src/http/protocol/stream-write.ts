/*
 * Creating and deleting general streams (protocol §5.1, §5.4): PUT creates (or forks),
 * DELETE removes; appends are in stream-append.ts. The store validates and commits each one atomically;
 * this module turns headers and bodies into requests and outcomes into replies. Every
 * 2xx is sent only after the store's commit, i.e. after the fsync.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import type { HttpContext } from "../context.js";
import { mediaType } from "../../core/streams.js";
import { parseExpiry, parseFork, parseStreamCompact, parseStreamState, wantsClose } from "./headers.js";
import { policyText } from "../../core/compaction.js";
import { conflict, invalidStateMessage, messagesOf, requestContentType, streamHeaders, writableName } from "./stream-append.js";
import { requestToken } from "../auth.js";
import { authorizeStream, isInboxStreamName, liveGeneralStream, STREAM_ROOT, streamName, streamUrlPath } from "./stream-access.js";

function bodyOf(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

export async function createStream(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply) {
  const name = writableName(streamName(request));
  const general = await authorizeStream(ctx, requestToken(request), name, "write");
  const expiry = parseExpiry(request.headers);
  const fork = parseFork(request.headers, STREAM_ROOT);
  const stateProtocol = parseStreamState(request.headers);
  const compaction = parseStreamCompact(request.headers);
  // Compaction keeps the latest change per (type, key): only a state stream has keys.
  if (compaction !== null && stateProtocol === null) throw new TailhookError("bad_request", "Stream-Compact needs Stream-State: v1");
  // An inbox's events are readable with its token only: forking one would publish them.
  if (fork && isInboxStreamName(fork.source)) throw new TailhookError("not_found", "the stream named by Stream-Forked-From does not exist");
  // A fork reads its source: the caller must be allowed to read it.
  if (fork) await authorizeStream(ctx, requestToken(request), fork.source, "read");
  let contentType = requestContentType(request.headers);
  const body = bodyOf(request);
  // An initial body on a fork that names no type is framed by the source's type.
  const framing = contentType ?? (fork && body.length > 0 ? (await liveGeneralStream(ctx, fork.source)).contentType : null);
  if (contentType !== null) contentType = contentType.toLowerCase();
  // State Protocol messages are JSON (its §3): a state stream is a JSON stream.
  if (stateProtocol !== null && !fork && (contentType === null || mediaType(contentType) !== "application/json")) {
    throw new TailhookError("bad_request", "a state stream (Stream-State) needs Content-Type: application/json");
  }
  const result = await general.createStream({
    name,
    contentType,
    ...expiry,
    closed: wantsClose(request.headers),
    messages: messagesOf(body, framing),
    fork,
    stateProtocol,
  });
  switch (result.status) {
    case "created":
    case "exists": {
      let { stream } = result;
      // The policy is a setting of the stream: a PUT that names one sets it (docs/key-frames.md, "Compaction").
      if (compaction !== null && policyText(compaction) !== policyText(stream.compaction)) {
        await ctx.store.setCompactionPolicy(stream.id, compaction);
        stream = { ...stream, compaction };
      }
      reply.headers({ "content-type": stream.contentType, ...streamHeaders(stream) });
      if (result.status === "exists") return reply.code(200).send();
      return reply
        .code(201)
        .header("location", `${ctx.baseUrl()}${streamUrlPath(name)}`)
        .send();
    }
    case "conflict": {
      const refusal = conflict(result.reason);
      return reply.code(refusal.status).send(refusal.body);
    }
    case "source_not_found":
      throw new TailhookError("not_found", "the stream named by Stream-Forked-From does not exist");
    case "bad_fork":
      throw new TailhookError("bad_request", result.reason);
    case "invalid_state_message":
      throw invalidStateMessage(result.index, result.reason);
  }
}

export async function deleteStream(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply) {
  const name = writableName(streamName(request));
  const general = await authorizeStream(ctx, requestToken(request), name, "write");
  const result = await general.deleteStream(name);
  if (result.status === "not_found") throw new TailhookError("not_found", "no such stream");
  if (result.status === "gone") throw new TailhookError("gone", "the stream was already deleted; its forks still read its data");
  return reply.code(204).send();
}
