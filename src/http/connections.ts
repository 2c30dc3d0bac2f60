/*
 * The connection edge of the HTTP server, below every route: timeouts set on purpose,
 * connection limits (global and per address), absolute-form targets, upgrade offers
 * that are not WebSocket, and replies kept in request order on one connection
 * (requests pipelined behind a reply that closes it are not processed; a malformed
 * request is answered only after the replies to the requests before it).
 */
import { IncomingMessage, STATUS_CODES, type RequestListener, type Server, type ServerOptions, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import ipaddr from "ipaddr.js";
import { TailhookError, type ErrorCode } from "../core/errors.js";
import { refusalReply } from "./errors.js";

export interface EdgeSettings {
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** 0: no limit. */
  maxConnections: number;
  /** 0: no limit. */
  maxConnectionsPerAddress: number;
}

/** Node's default, made explicit: the whole header block, request line included. */
export const MAX_HEADER_BYTES = 16 * 1024;
const WEBSOCKET_PREFIX = "/v1/ws/";
/** How long a refused connection may stay open for its client to read the 503. */
const REFUSAL_LINGER_MS = 1000;

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/** `http://host/p?q` → `/p?q` (RFC 9112 §3.2.2), keeping the path and query as sent. */
export function toOriginForm(url: string): string {
  if (url.startsWith("/")) return url;
  const authority = ABSOLUTE_FORM.exec(url);
  if (!authority) return url;
  const rest = url.slice(authority[0].length);
  return rest.startsWith("/") ? rest : `/${rest}`;
}

function isWebSocketUpgrade(message: IncomingMessage): boolean {
  const upgrade = message.headers.upgrade;
  return (
    typeof upgrade === "string" &&
    upgrade.trim().toLowerCase() === "websocket" &&
    toOriginForm(message.url ?? "").startsWith(WEBSOCKET_PREFIX)
  );
}

/*
 * Node 20 hands every request that offers an upgrade to the server's `upgrade` listener
 * (there is no per-request choice before Node 22's shouldUpgradeCallback). It asks
 * `req.upgrade` once the headers are in: answering false for anything but a WebSocket
 * upgrade of /v1/ws/… makes Node serve the rest as ordinary requests, body included
 * (RFC 9110 §7.8 lets a server ignore the offer).
 */
class EdgeIncomingMessage extends IncomingMessage {
  /** The parser's raw verdict: the request offered an upgrade. */
  upgradeOffered = false;
}
Object.defineProperty(EdgeIncomingMessage.prototype, "upgrade", {
  configurable: true,
  get(this: EdgeIncomingMessage) {
    return this.upgradeOffered && isWebSocketUpgrade(this);
  },
  set(this: EdgeIncomingMessage, value: boolean) {
    this.upgradeOffered = Boolean(value);
  },
});

export function serverOptions(settings: EdgeSettings): ServerOptions {
  return {
    IncomingMessage: EdgeIncomingMessage,
    maxHeaderSize: MAX_HEADER_BYTES,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    headersTimeout: settings.headersTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    // Node checks the two timeouts on this sweep (30 s by default, which would let a
    // 20 s header timeout run to 50 s).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(settings.headersTimeoutMs / 4))),
  };
}

interface ConnectionState {
  /** Settles once every response started on this connection so far has ended. */
  idle: Promise<void>;
  /** `idle` as it was before the newest request joined. */
  idleBeforeLast: Promise<void>;
  last: IncomingMessage | undefined;
  inFlight: number;
  /** Over a connection limit: answered 503 at accept, nothing it sends is processed. */
  refused: boolean;
  /** The parser failed: the error reply is queued behind the replies in flight. */
  broken: boolean;
}

const connections = new WeakMap<Socket, ConnectionState>();

function stateOf(socket: Socket): ConnectionState {
  let state = connections.get(socket);
  if (!state) {
    state = { idle: Promise.resolve(), idleBeforeLast: Promise.resolve(), last: undefined, inFlight: 0, refused: false, broken: false };
    connections.set(socket, state);
  }
  return state;
}

/** False once an earlier reply closed (or is closing) the connection. */
function connectionContinues(socket: Socket): boolean {
  return !socket.destroyed && !socket.writableEnded;
}

function ended(res: ServerResponse, socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("close", done);
      resolve();
    };
    res.once("close", done);
    socket.once("close", done);
  });
}

/**
 * Wraps the request listener: targets in origin form, and one request at a time per
 * connection, so a reply that closes the connection is known before the next request
 * on it is processed (RFC 9112 §9.6: stored means answered).
 */
export function inRequestOrder(handler: RequestListener): RequestListener {
  return (req, res) => {
    req.url = toOriginForm(req.url ?? "/");
    const socket = req.socket;
    const state = stateOf(socket);
    // Over a limit, or behind a reply that already closed the connection: not processed.
    if (state.refused || !connectionContinues(socket)) return;
    // Node 20 drops whatever was pipelined behind a request that offered an upgrade.
    if ((req as EdgeIncomingMessage).upgradeOffered) res.shouldKeepAlive = false;
    const previous = state.idle;
    const done = ended(res, socket);
    state.idleBeforeLast = previous;
    state.idle = previous.then(() => done);
    state.last = req;
    state.inFlight++;
    void done.then(() => state.inFlight--);
    if (state.inFlight === 1) return void handler(req, res);
    void previous.then(() => {
      // A request the parser could not finish belongs to the error reply.
      if (connectionContinues(socket) && !(state.broken && !req.complete)) handler(req, res);
    });
  };
}

/** A reply written on the socket itself, ahead of node:http, from the one error table. */
function rawReply(code: ErrorCode): string {
  const reply = refusalReply(new TailhookError(code, ""));
  const reason = STATUS_CODES[reply.status]!;
  const body = JSON.stringify({ error: { code, message: reason.toLowerCase() } });
  const headers = Object.entries(reply.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return (
    `HTTP/1.1 ${reply.status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `${headers}connection: close\r\n\r\n${body}`
  );
}

function codeForParseError(code: string | undefined): ErrorCode {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return "header_fields_too_large";
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return "payload_too_large";
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return "request_timeout";
    default:
      return "bad_request";
  }
}

/** Replaces Node's clientError reply, which is written at once, ahead of replies in flight. */
function answerParseErrorsInOrder(server: Server): void {
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    const state = stateOf(socket);
    if (state.broken || state.refused) return;
    state.broken = true;
    if (error.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    const reply = rawReply(codeForParseError(error.code));
    // An unfinished request is the one the error cut short: it gets the error reply.
    const before = state.last && !state.last.complete ? state.idleBeforeLast : state.idle;
    void before.then(() => {
      if (!connectionContinues(socket)) return void socket.destroy();
      socket.end(reply, () => socket.destroy());
    });
  });
}

/** IPv4 as is (mapped IPv6 included); IPv6 by /64, what one host usually holds. */
export function addressKey(address: string | undefined): string {
  if (!address) return "";
  try {
    const parsed = ipaddr.process(address);
    if (parsed.kind() === "ipv4") return parsed.toString();
    return `${(parsed as ipaddr.IPv6).parts
      .slice(0, 4)
      .map((part) => part.toString(16))
      .join(":")}::/64`;
  } catch {
    return address;
  }
}

/*
 * Over a limit, a connection is answered `503` with Retry-After at accept and closed,
 * not dropped silently: a sender then sees why, and retries later.
 */
function limitConnections(server: Server, settings: EdgeSettings): void {
  let open = 0;
  const perAddress = new Map<string, number>();
  // Ahead of node:http's own listener, so the count is settled before any request.
  server.prependListener("connection", (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    const fromAddress = perAddress.get(key) ?? 0;
    const overGlobal = settings.maxConnections > 0 && open >= settings.maxConnections;
    const overAddress = settings.maxConnectionsPerAddress > 0 && fromAddress >= settings.maxConnectionsPerAddress;
    if (overGlobal || overAddress) return refuse(socket);
    open++;
    perAddress.set(key, fromAddress + 1);
    socket.once("close", () => {
      open--;
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left === 0) perAddress.delete(key);
      else perAddress.set(key, left);
    });
  });
}

function refuse(socket: Socket): void {
  stateOf(socket).refused = true;
  socket.on("error", () => socket.destroy());
  socket.end(rawReply("overloaded"));
  const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  linger.unref();
  socket.once("close", () => clearTimeout(linger));
}

/** Installs the limits and the in-order error replies on a server made with serverOptions(). */
export function guardConnections(server: Server, settings: EdgeSettings): void {
  // 0: every header is kept (the block stays bounded by MAX_HEADER_BYTES, else 431).
  server.maxHeadersCount = 0;
  limitConnections(server, settings);
  answerParseErrorsInOrder(server);
}
