/*
 * Request logs: one JSON line per request, written when the request ends (for SSE,
 * long-polls and WebSockets that is when the connection ends): method, route pattern,
 * inbox id, status, bytes, duration and a request id, which is echoed as the
 * `x-request-id` response header. A 5xx is logged at error level with its cause, which
 * the handler that caught it attaches with noteFailure(). The URL, the query string and
 * the headers are never logged: they carry tokens and sender secrets.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";

export const REQUEST_ID_HEADER = "x-request-id";
/** An incoming id is taken only if it is short and plain (no spaces, no control characters). */
const SANE_REQUEST_ID = /^[\w.:/+=@-]{1,128}$/;

interface RequestState {
  id: string;
  started: bigint;
  route: string | null;
  inboxId: string | undefined;
  requestBytes: number | undefined;
  responseBytes: number;
  /** Set for upgrades, whose reply is not a ServerResponse. */
  status: number | undefined;
  failure: unknown;
}

const STATE = Symbol("tailhook.requestLog");
type Tracked = IncomingMessage & { [STATE]?: RequestState };

function begin(req: IncomingMessage): RequestState {
  const incoming = req.headers[REQUEST_ID_HEADER];
  const state: RequestState = {
    id: typeof incoming === "string" && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID(),
    started: process.hrtime.bigint(),
    route: null,
    inboxId: undefined,
    requestBytes: undefined,
    responseBytes: 0,
    status: undefined,
    failure: undefined,
  };
  (req as Tracked)[STATE] = state;
  return state;
}

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === "string") return Buffer.byteLength(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/** Counts the body bytes handed to the response (SSE and chunked replies have no Content-Length). */
function countResponseBytes(res: ServerResponse, state: RequestState): void {
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    state.responseBytes += chunkBytes(chunk, rest[0]);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse["write"];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    state.responseBytes += chunkBytes(chunk, rest[0]);
    return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse["end"];
}

function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers["content-length"];
  if (header === undefined) return undefined;
  const value = Number(header);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function write(
  logger: Logger,
  req: IncomingMessage,
  state: RequestState,
  status: number | null,
  finished: boolean,
  responseBytes: number,
): void {
  const line: Record<string, unknown> = {
    reqId: state.id,
    method: req.method,
    route: state.route,
    status,
    requestBytes: state.requestBytes ?? declaredLength(req) ?? 0,
    responseBytes,
    durationMs: Math.round(Number(process.hrtime.bigint() - state.started) / 1e4) / 100,
  };
  if (state.inboxId !== undefined) line.inbox = state.inboxId;
  // The client went away before the reply was complete (for SSE: the usual way it ends).
  if (!finished) line.aborted = true;
  if (state.failure !== undefined) line.err = state.failure;
  if (status !== null && status >= 500) logger.error(line, "request failed");
  else logger.info(line, "request");
}

/** Starts the log of an ordinary request; call it first thing in the server's request handler. */
export function logRequest(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  const state = begin(req);
  res.setHeader(REQUEST_ID_HEADER, state.id);
  // At warn and above only 5xx lines are written, but those still need their figures.
  if (!logger.isLevelEnabled("error")) return;
  countResponseBytes(res, state);
  res.once("close", () => write(logger, req, state, res.headersSent ? res.statusCode : null, res.writableFinished, state.responseBytes));
}

/** Starts the log of an upgrade request; its line is written when the socket closes. */
export function logUpgrade(req: IncomingMessage, socket: Duplex, logger: Logger): void {
  const state = begin(req);
  if (!logger.isLevelEnabled("error")) return;
  const net = socket as Socket;
  const writtenBefore = net.bytesWritten ?? 0;
  socket.once("close", () =>
    write(logger, req, state, state.status ?? null, state.status !== undefined, (net.bytesWritten ?? 0) - writtenBefore),
  );
}

function stateOf(req: IncomingMessage): RequestState | undefined {
  return (req as Tracked)[STATE];
}

/** The route pattern for the log line, e.g. "/h/:inbox" (never the URL itself). */
export function noteRoute(req: IncomingMessage, route: string): void {
  const state = stateOf(req);
  if (state) state.route = route;
}

export function noteInbox(req: IncomingMessage, inboxId: string): void {
  const state = stateOf(req);
  if (state) state.inboxId = inboxId;
}

/** The body bytes actually read (else the line shows the declared Content-Length). */
export function noteRequestBytes(req: IncomingMessage, bytes: number): void {
  const state = stateOf(req);
  if (state) state.requestBytes = bytes;
}

/** The cause of a 5xx, so that the request's line carries it. */
export function noteFailure(req: IncomingMessage, error: unknown): void {
  const state = stateOf(req);
  if (state) state.failure = error;
}

/** An upgrade's answer: 101 when accepted, else the refusal's status. */
export function noteUpgradeStatus(req: IncomingMessage, status: number): void {
  const state = stateOf(req);
  if (state) state.status = status;
}

/** Fastify knows the matched route pattern; hand it to the request's line. */
export function recordRouteNames(app: FastifyInstance): void {
  app.addHook("onRequest", (request, _reply, done) => {
    if (request.routeOptions.url !== undefined) noteRoute(request.raw, request.routeOptions.url);
    done();
  });
}

/** What was noted for the request's log line that the metrics count too: route pattern and upgrade status. */
export function notedOutcome(req: IncomingMessage): { route: string | null; upgradeStatus: number | undefined } {
  const state = stateOf(req);
  return { route: state?.route ?? null, upgradeStatus: state?.status };
}
