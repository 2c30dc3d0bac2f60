/*
 * Stream appends (POST /v1/stream/<name>) on bare node:http, ahead of the router, like
 * webhook ingest: an append is the hot path of a stream server, and the router's
 * per-request work cost more than the append itself. Everything else under
 * /v1/stream goes through Fastify (routes/streams.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { TailhookError } from "../core/errors.js";
import { presentedToken } from "./auth.js";
import { discardBody, readBody } from "./body.js";
import type { HttpContext } from "./context.js";
import { sendFailureRaw } from "./errors.js";
import { noteRequestBytes, noteRoute } from "./request-log.js";
import { browserHeaders } from "./protocol/browser-headers.js";
import { appendToStream, writableName } from "./protocol/stream-append.js";
import { authorizeStream, checkStreamName, STREAM_ROOT } from "./protocol/stream-access.js";

const PREFIX = `${STREAM_ROOT}/`;
const RESERVED = "__ds";

export interface AppendTarget {
  /** The percent-encoded name, as sent. */
  rawName: string;
  query: URLSearchParams;
}

/** A POST to a stream (but not to the reserved __ds control APIs), or undefined. */
export function parseAppendUrl(method: string | undefined, url: string): AppendTarget | undefined {
  if (method !== "POST" || !url.startsWith(PREFIX)) return undefined;
  const questionMark = url.indexOf("?");
  const rawName = url.slice(PREFIX.length, questionMark === -1 ? undefined : questionMark);
  // "__ds" and "__ds/…" are the protocol's control APIs (the router serves them); "__dsx" is a stream.
  if (rawName === RESERVED || rawName.startsWith(`${RESERVED}/`)) return undefined;
  return { rawName, query: new URLSearchParams(questionMark === -1 ? "" : url.slice(questionMark + 1)) };
}

function decodedName(rawName: string): string {
  try {
    return checkStreamName(decodeURIComponent(rawName));
  } catch (error) {
    if (error instanceof TailhookError) throw error;
    throw new TailhookError("bad_request", "the stream name is not valid percent-encoding");
  }
}

function tooLarge(limit: number): TailhookError {
  return new TailhookError("payload_too_large", `an append may be at most ${limit} bytes`, { limit });
}

export function createAppendHandler(ctx: HttpContext) {
  const limit = ctx.config.maxBodyBytes;
  return async function handleAppend(req: IncomingMessage, res: ServerResponse, target: AppendTarget): Promise<void> {
    const headers = browserHeaders(req.headers.origin !== undefined);
    noteRoute(req, "/v1/stream/*");
    try {
      const name = writableName(decodedName(target.rawName));
      const token = presentedToken(req.headers, { token: target.query.get("token") ?? undefined });
      // Refused before reading a body we would not take.
      const general = await authorizeStream(ctx, token, name, "write");
      if (Number(req.headers["content-length"] ?? 0) > limit) throw tooLarge(limit);
      const body = await readBody(req, limit, () => tooLarge(limit));
      noteRequestBytes(req, body.length);
      const reply = await appendToStream(general, { name, headers: req.headers, body });
      const payload = reply.body === undefined ? undefined : JSON.stringify(reply.body);
      const connection: Record<string, string> = ctx.isShuttingDown() ? { connection: "close" } : {};
      if (payload === undefined) {
        res.writeHead(reply.status, { ...headers, ...reply.headers, ...connection });
        res.end();
      } else {
        res.writeHead(reply.status, {
          ...headers,
          ...reply.headers,
          ...connection,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        });
        res.end(payload);
      }
    } catch (error) {
      const bodyEnded = await discardBody(req);
      sendFailureRaw(req, res, error, ctx.store, bodyEnded ? headers : { ...headers, connection: "close" });
    }
  };
}
