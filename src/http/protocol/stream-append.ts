/*
 * Appending to a general stream (protocol §5.2-5.3, §5.2.1): headers and body in, a
 * reply out, with no web framework in between, because appends are the hot path of a
 * stream server (see http/append-handler.ts). The store validates and commits the
 * append atomically; the reply is built only after the commit, i.e. after the fsync.
 */
import type { IncomingHttpHeaders } from "node:http";
import { TailhookError } from "../../core/errors.js";
import { formatCompactHeader } from "../../core/compaction.js";
import { formatOffset } from "../../core/offsets.js";
import type { StreamInfo } from "../../core/types.js";
import { mediaType, type AppendResult } from "../../core/streams.js";
import { type GeneralStreams } from "../../storage/streams.js";
import { refusalReply } from "../errors.js";
import { isJsonStream } from "./bodies.js";
import { parseProducer, parseStreamSeq, wantsClose } from "./headers.js";
import { jsonMessages } from "./json-messages.js";
import { isInboxStreamName } from "./stream-access.js";

export interface StreamReply {
  status: number;
  headers: Record<string, string>;
  /** A JSON error body, for refusals the protocol answers with headers the client needs. */
  body?: { error: { code: string; message: string } };
}

export interface AppendInput {
  name: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function writableName(name: string): string {
  if (isInboxStreamName(name)) throw new TailhookError("method_not_allowed", "an inbox stream is written only by its webhooks");
  return name;
}

export function requestContentType(headers: IncomingHttpHeaders): string | null {
  const value = headers["content-type"];
  return value === undefined || value.trim() === "" ? null : value.trim();
}

/** One message per flattened JSON value in a JSON stream; the whole body otherwise. */
export function messagesOf(body: Buffer, contentType: string | null): Buffer[] {
  if (body.length === 0) return [];
  return contentType !== null && isJsonStream({ contentType }) ? jsonMessages(body) : [body];
}

export function streamHeaders(stream: StreamInfo): Record<string, string> {
  const headers: Record<string, string> = { "stream-next-offset": formatOffset(stream.tailSeq) };
  if (stream.closed) headers["stream-closed"] = "true";
  if (stream.stateProtocol !== null) headers["stream-state"] = stream.stateProtocol;
  if (stream.compaction) headers["stream-compact"] = formatCompactHeader(stream.compaction);
  return headers;
}

/** Message `index` of a state stream's append or create is no State Protocol message. */
export function invalidStateMessage(index: number, reason: string): TailhookError {
  return new TailhookError("bad_request", `message ${index + 1} is not a valid State Protocol message: ${reason}; nothing was stored`, {
    messageIndex: index,
  });
}

/** A refusal that carries headers the client needs (the tail, the expected Producer-Seq). */
export function conflict(message: string, headers: Record<string, string> = {}): StreamReply {
  return refusalReply(new TailhookError("conflict", message), headers);
}

function producerHeaders(headers: IncomingHttpHeaders, producerSeq: number | null): Record<string, string> {
  const epoch = headers["producer-epoch"];
  if (producerSeq === null || typeof epoch !== "string") return {};
  return { "producer-epoch": epoch.trim(), "producer-seq": String(producerSeq) };
}

function replyTo(input: AppendInput, result: AppendResult, sentType: string | null, messageCount: number): StreamReply {
  switch (result.status) {
    case "appended":
      // 200 tells a producer its data is new; a close-only request has none.
      return {
        status: result.producerSeq !== null && messageCount > 0 ? 200 : 204,
        headers: { ...streamHeaders(result.stream), ...producerHeaders(input.headers, result.producerSeq) },
      };
    case "duplicate":
      return { status: 204, headers: { ...streamHeaders(result.stream), ...producerHeaders(input.headers, result.producerSeq) } };
    case "closed":
      return conflict("the stream is closed", streamHeaders(result.stream));
    case "content_type_mismatch":
      if (sentType === null) throw new TailhookError("bad_request", "an append with a body needs a Content-Type");
      return conflict(`the stream's content type is ${result.stream.contentType}`);
    case "stream_seq_regression":
      return conflict("Stream-Seq must be greater than the last one appended");
    case "stale_epoch":
      return refusalReply(new TailhookError("stale_epoch", "a newer producer epoch is active"), { "producer-epoch": String(result.epoch) });
    case "new_epoch_needs_seq_zero":
      throw new TailhookError("bad_request", "a new producer epoch must start at Producer-Seq 0");
    case "producer_seq_gap":
      return conflict(`expected Producer-Seq ${result.expected}, got ${result.received}`, {
        "producer-expected-seq": String(result.expected),
        "producer-received-seq": String(result.received),
      });
    case "not_found":
      throw new TailhookError("not_found", "no such stream");
    case "gone":
      throw new TailhookError("gone", "the stream was deleted; its forks still read its data");
    case "invalid_state_message":
      throw invalidStateMessage(result.index, result.reason);
  }
}

/** Appends to a stream the caller was already authorized to write (see authorizeStream). */
export async function appendToStream(general: GeneralStreams, input: AppendInput): Promise<StreamReply> {
  const close = wantsClose(input.headers);
  const producer = parseProducer(input.headers);
  const streamSeq = parseStreamSeq(input.headers);
  if (input.body.length === 0 && !close) throw new TailhookError("bad_request", "an append needs a body (or Stream-Closed: true to close)");
  const sentType = requestContentType(input.headers);
  const messages = messagesOf(input.body, sentType);
  if (input.body.length > 0 && messages.length === 0) throw new TailhookError("bad_request", "an empty JSON array appends nothing");
  const result = await general.appendStream({
    name: input.name,
    contentType: sentType === null ? null : mediaType(sentType),
    messages,
    close,
    streamSeq,
    producer,
  });
  return replyTo(input, result, sentType, messages.length);
}
