/*
 * The one table from error codes to HTTP statuses, and the one JSON shape of an error
 * reply. Every route, the ingest handler included, answers errors through here.
 */
import type { ServerResponse } from "node:http";
import { TailhookError, type ErrorCode } from "../core/errors.js";

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  gone: 410,
  payload_too_large: 413,
  not_implemented: 501,
  store_unavailable: 503,
  shutting_down: 503,
};

export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string } & Record<string, unknown> };
}

/** Maps anything thrown to a reply; unknown errors are the store's trouble (503). */
export function toErrorReply(error: unknown): ErrorReply {
  if (error instanceof TailhookError) {
    const status = STATUS_BY_CODE[error.code];
    const headers: Record<string, string> = {};
    if (status === 401) headers["www-authenticate"] = 'Bearer realm="tailhook"';
    if (status === 503) headers["retry-after"] = "1";
    return { status, headers, body: { error: { code: error.code, message: error.message, ...error.details } } };
  }
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, headers: {}, body: { error: { code: "bad_request", message: (error as Error).message } } };
  }
  return {
    status: 503,
    headers: { "retry-after": "1" },
    body: { error: { code: "store_unavailable", message: "storage is unavailable; nothing was stored" } },
  };
}

export function sendErrorRaw(res: ServerResponse, error: unknown, extraHeaders: Record<string, string> = {}): void {
  const reply = toErrorReply(error);
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
