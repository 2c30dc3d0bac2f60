/*
 * Writing general streams (protocol §5.1-5.4): PUT creates (or forks), POST appends
 * and/or closes, DELETE removes. The store validates and commits each one atomically;
 * this module turns headers and bodies into requests and outcomes into replies. Every
 * 2xx is sent only after the store's commit, i.e. after the fsync.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import { formatOffset } from "../../core/offsets.js";
import type { StreamInfo } from "../../core/types.js";
import { mediaType, type AppendResult } from "../../storage/streams.js";
import type { HttpContext } from "../context.js";
import { isJsonStream } from "./bodies.js";
import { parseExpiry, parseFork, parseProducer, parseStreamSeq, wantsClose } from "./headers.js";
import { jsonMessages } from "./json-messages.js";
import { generalStreamsFor, isInboxStreamName, liveGeneralStream, STREAM_ROOT, streamName } from "./stream-access.js";

function writableName(request: FastifyRequest): string {
  const name = streamName(request);
  if (isInboxStreamName(name)) throw new TailhookError("method_not_allowed", "an inbox stream is written only by its webhooks");
  return name;
}

function bodyOf(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

function requestContentType(request: FastifyRequest): string | null {
  const value = request.headers["content-type"];
  return value === undefined || value.trim() === "" ? null : value.trim();
}

/** One message per flattened JSON value in a JSON stream; the whole body otherwise. */
function messagesOf(body: Buffer, contentType: string | null): Buffer[] {
  if (body.length === 0) return [];
  return contentType !== null && isJsonStream({ contentType }) ? jsonMessages(body) : [body];
}

function streamHeaders(stream: StreamInfo): Record<string, string> {
  const headers: Record<string, string> = { "stream-next-offset": formatOffset(stream.tailSeq) };
  if (stream.closed) headers["stream-closed"] = "true";
  return headers;
}

function conflict(reply: FastifyReply, message: string, extra: Record<string, unknown> = {}) {
  return reply.code(409).send({ error: { code: "conflict", message, ...extra } });
}

export async function createStream(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply) {
  const name = writableName(request);
  const general = generalStreamsFor(ctx, request);
  const expiry = parseExpiry(request.headers);
  const fork = parseFork(request.headers, STREAM_ROOT);
  // An inbox's events are readable with its token only: forking one would publish them.
  if (fork && isInboxStreamName(fork.source)) throw new TailhookError("not_found", "the stream named by Stream-Forked-From does not exist");
  let contentType = requestContentType(request);
  const body = bodyOf(request);
  // An initial body on a fork that names no type is framed by the source's type.
  const framing = contentType ?? (fork && body.length > 0 ? (await liveGeneralStream(ctx, fork.source)).contentType : null);
  if (contentType !== null) contentType = contentType.toLowerCase();
  const result = await general.createStream({
    name,
    contentType,
    ...expiry,
    closed: wantsClose(request.headers),
    messages: messagesOf(body, framing),
    fork,
  });
  switch (result.status) {
    case "created":
    case "exists": {
      const { stream } = result;
      reply.headers({ "content-type": stream.contentType, ...streamHeaders(stream) });
      if (result.status === "exists") return reply.code(200).send();
      return reply.code(201).header("location", `${ctx.baseUrl()}${STREAM_ROOT}/${name}`).send();
    }
    case "conflict":
      return conflict(reply, result.reason);
    case "source_not_found":
      throw new TailhookError("not_found", "the stream named by Stream-Forked-From does not exist");
    case "bad_fork":
      throw new TailhookError("bad_request", result.reason);
  }
}

function producerHeaders(request: FastifyRequest, producerSeq: number | null): Record<string, string> {
  const epoch = request.headers["producer-epoch"];
  if (producerSeq === null || typeof epoch !== "string") return {};
  return { "producer-epoch": epoch.trim(), "producer-seq": String(producerSeq) };
}

function sendAppendResult(
  request: FastifyRequest,
  reply: FastifyReply,
  result: AppendResult,
  sentType: string | null,
  messageCount: number,
) {
  switch (result.status) {
    case "appended":
      reply.headers({ ...streamHeaders(result.stream), ...producerHeaders(request, result.producerSeq) });
      // 200 tells a producer its data is new; a close-only request has none.
      return reply.code(result.producerSeq !== null && messageCount > 0 ? 200 : 204).send();
    case "duplicate":
      reply.headers({ ...streamHeaders(result.stream), ...producerHeaders(request, result.producerSeq) });
      return reply.code(204).send();
    case "closed":
      reply.headers(streamHeaders(result.stream));
      return conflict(reply, "the stream is closed");
    case "content_type_mismatch":
      if (sentType === null) throw new TailhookError("bad_request", "an append with a body needs a Content-Type");
      return conflict(reply, `the stream's content type is ${result.stream.contentType}`);
    case "stream_seq_regression":
      return conflict(reply, "Stream-Seq must be greater than the last one appended");
    case "stale_epoch":
      reply.header("producer-epoch", String(result.epoch));
      return reply.code(403).send({ error: { code: "stale_epoch", message: "a newer producer epoch is active" } });
    case "new_epoch_needs_seq_zero":
      throw new TailhookError("bad_request", "a new producer epoch must start at Producer-Seq 0");
    case "producer_seq_gap":
      reply.headers({ "producer-expected-seq": String(result.expected), "producer-received-seq": String(result.received) });
      return conflict(reply, `expected Producer-Seq ${result.expected}, got ${result.received}`);
    case "not_found":
      throw new TailhookError("not_found", "no such stream");
    case "gone":
      throw new TailhookError("gone", "the stream was deleted; its forks still read its data");
  }
}

export async function appendStream(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply) {
  const name = writableName(request);
  const general = generalStreamsFor(ctx, request);
  const close = wantsClose(request.headers);
  const producer = parseProducer(request.headers);
  const streamSeq = parseStreamSeq(request.headers);
  const body = bodyOf(request);
  if (body.length === 0 && !close) throw new TailhookError("bad_request", "an append needs a body (or Stream-Closed: true to close)");
  const sentType = requestContentType(request);
  const messages = messagesOf(body, sentType);
  if (body.length > 0 && messages.length === 0) throw new TailhookError("bad_request", "an empty JSON array appends nothing");
  const result = await general.appendStream({
    name,
    contentType: sentType === null ? null : mediaType(sentType),
    messages,
    close,
    streamSeq,
    producer,
  });
  return sendAppendResult(request, reply, result, sentType, messages.length);
}

export async function deleteStream(ctx: HttpContext, request: FastifyRequest, reply: FastifyReply) {
  const name = writableName(request);
  const general = generalStreamsFor(ctx, request);
  const result = await general.deleteStream(name);
  if (result.status === "not_found") throw new TailhookError("not_found", "no such stream");
  if (result.status === "gone") throw new TailhookError("gone", "the stream was already deleted; its forks still read its data");
  return reply.code(204).send();
}
