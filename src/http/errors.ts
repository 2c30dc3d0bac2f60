/*
 * The error funnel: every error reply, from every route (ingest and stream appends on
 * bare node:http, the Fastify routes and the subscription routes through the server's
 * error handler, the WebSocket upgrade and its close codes), is built here from the one
 * table in core/errors.ts, in one JSON shape. A TailhookError answers its own code; a
 * client error Fastify raised answers its status's code; anything else is the store's
 * trouble when the store says so (503: retry) and otherwise a bug (500, logged with its
 * cause by the request's log line).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ERROR_TABLE, TailhookError, type ErrorCode } from "../core/errors.js";
import type { Store } from "../storage/store.js";
import { noteFailure } from "./request-log.js";

/** What the funnel asks the store: is this failure its own? */
export type StoreFailures = Pick<Store, "isFailure">;

export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string } & Record<string, unknown> };
}

const STORE_UNAVAILABLE_MESSAGE = "storage is unavailable; nothing was stored";
// Claims nothing about what was stored: a bug may strike before or after a commit.
const INTERNAL_MESSAGE = "internal server error; the server log has the cause under this reply's x-request-id";

/** Fastify's own client errors carry only a status; these are the statuses it raises. */
const CODE_OF_CLIENT_STATUS: Record<number, ErrorCode> = {
  400: "bad_request",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

/** The TailhookError that `error` answers as. */
export function asTailhookError(error: unknown, store: StoreFailures): TailhookError {
  if (error instanceof TailhookError) return error;
  const statusCode = (error as { statusCode?: unknown } | undefined)?.statusCode;
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
    return new TailhookError(CODE_OF_CLIENT_STATUS[statusCode] ?? "bad_request", (error as Error).message);
  }
  if (store.isFailure(error)) return new TailhookError("store_unavailable", STORE_UNAVAILABLE_MESSAGE);
  return new TailhookError("internal_error", INTERNAL_MESSAGE);
}

/** The reply for a refusal; `headers` are the protocol's own (Stream-Next-Offset, Producer-Epoch, …). */
export function refusalReply(error: TailhookError, headers: Record<string, string> = {}): ErrorReply {
  const { status } = ERROR_TABLE[error.code];
  const standard: Record<string, string> = {};
  if (status === 401) standard["www-authenticate"] = 'Bearer realm="tailhook"';
  if (status === 503) standard["retry-after"] = "1";
  // A 410 that names the stream's snapshot says so in a Link too (docs/key-frames.md, "Compaction").
  const snapshot = error.code === "gone" ? error.details?.snapshot : undefined;
  if (typeof snapshot === "string") standard.link = `<${snapshot}>; rel="snapshot"`;
  return { status, headers: { ...standard, ...headers }, body: { error: { code: error.code, message: error.message, ...error.details } } };
}

/** Maps anything thrown to its reply (see the header comment). */
export function toErrorReply(error: unknown, store: StoreFailures): ErrorReply {
  return refusalReply(asTailhookError(error, store));
}

/** The close code of a WebSocket ended by `error`. */
export function closeCodeOf(error: unknown, store: StoreFailures): number {
  return ERROR_TABLE[asTailhookError(error, store).code].close;
}

/** Writes an error reply on bare node:http (or drops the connection if a reply was already started). */
export function sendErrorRaw(res: ServerResponse, reply: ErrorReply, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...reply.headers,
    ...extraHeaders,
  });
  res.end(body);
}

/** Answers anything thrown on bare node:http; a 5xx's cause goes on the request's log line. */
export function sendFailureRaw(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  store: StoreFailures,
  extraHeaders: Record<string, string> = {},
): void {
  const reply = toErrorReply(error, store);
  if (reply.status >= 500) noteFailure(req, error);
  sendErrorRaw(res, reply, extraHeaders);
}
