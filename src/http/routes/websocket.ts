/*
 * Inbox streams over WebSocket, for clients that would rather hold one socket than
 * reconnect SSE or long-poll: the same offsets, pages, retention checks and wake-ups
 * as the Durable Streams reads. The upgrade is taken on the server's raw `upgrade`
 * event with `ws`, so every refusal before it (400, 401, 404, 410) is a real HTTP
 * reply with the usual JSON error body, never an accepted socket that closes at once.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";
import { WebSocket, WebSocketServer } from "ws";
import { messageJson } from "../../core/capture.js";
import { ERROR_TABLE, TailhookError } from "../../core/errors.js";
import { formatOffset, formatReadOffset } from "../../core/offsets.js";
import type { StoredMessage, StreamInfo } from "../../core/types.js";
import { presentedToken } from "../auth.js";
import type { HttpContext } from "../context.js";
import { closeCodeOf, toErrorReply, type ErrorReply } from "../errors.js";
import { noteFailure, noteRoute, noteUpgradeStatus } from "../request-log.js";
import { authorizeInboxStream, resolveReadStart } from "../stream-reads.js";
import { snapshotPath } from "../../core/compaction.js";

const INBOX_PATH = /^\/v1\/ws\/inbox\/([^/]+)$/;
/** Past this many bytes queued on a socket, the next page waits until they are written. */
const HIGH_WATER_BYTES = 512 * 1024;
/** A client that answers none of this many pings in a row is dropped. */
const MAX_UNANSWERED_PINGS = 2;
/** How long a closing socket may take to answer our close frame before it is cut. */
const CLOSE_GRACE_MS = 2000;

// Ends that are failures take their close code from the error table, as HTTP replies their status.
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = ERROR_TABLE.shutting_down.close;
const CLOSE_GONE = ERROR_TABLE.gone.close;
const CLOSE_DELETED = ERROR_TABLE.not_found.close;

/** Why a connection's read loop stopped. */
type LoopEnd =
  | { end: "client_closed" }
  | { end: "shutdown" }
  | { end: "gone"; earliestOffset: string; snapshot: string | undefined }
  | { end: "deleted" }
  | { end: "closed" }
  | { end: "unresponsive" }
  | { end: "failed"; error: unknown };

interface Opened {
  stream: StreamInfo;
  afterSeq: number;
  /** Reading the compacted log behind H (core/compaction.ts). */
  view: number | undefined;
}

/** Authorizes an upgrade request and resolves its offset, exactly as the stream reads do. */
async function openInboxStream(ctx: HttpContext, request: IncomingMessage): Promise<Opened> {
  const url = new URL(request.url ?? "/", "http://upgrade.invalid");
  const match = INBOX_PATH.exec(url.pathname);
  if (!match) throw new TailhookError("not_found", "no such route");
  noteRoute(request, "/v1/ws/inbox/:id");
  if (ctx.isShuttingDown()) throw new TailhookError("shutting_down", "the server is stopping");
  const token = presentedToken(request.headers, { token: url.searchParams.get("token") ?? undefined });
  let inboxId: string;
  try {
    inboxId = decodeURIComponent(match[1]!);
  } catch {
    inboxId = "";
  }
  const { stream } = await authorizeInboxStream(ctx, token, inboxId);
  return { stream, ...resolveReadStart(stream, url.searchParams.get("offset") ?? undefined) };
}

/** Answers a refused upgrade with an ordinary HTTP error reply, then closes the socket. */
function refuseUpgrade(socket: Duplex, reply: ErrorReply): void {
  const body = JSON.stringify(reply.body);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    connection: "close",
    ...reply.headers,
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ""}\r\n${head}\r\n${body}`);
}

function eventFrame(message: StoredMessage, horizonSeq: number): string {
  return `{"type":"event","offset":"${formatReadOffset(message.seq, horizonSeq)}","event":${messageJson(message)}}`;
}

/** Resolves once `text` was handed to the socket, or failed to be, or the connection ended. */
function sendText(socket: WebSocket, text: string, done: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      done.removeEventListener("abort", finish);
      resolve();
    };
    done.addEventListener("abort", finish, { once: true });
    socket.send(text, finish);
  });
}

/** One connected reader: pages from the store to the socket, then waits for commits. */
class InboxConnection {
  private readonly done = new AbortController();
  private unansweredPings = 0;

  constructor(
    private readonly ctx: HttpContext,
    private readonly socket: WebSocket,
    private readonly streamId: number,
    private afterSeq: number,
    private readonly view: number | undefined,
    private readonly streamName: string,
  ) {
    socket.once("close", () => this.done.abort());
    socket.on("pong", () => (this.unansweredPings = 0));
    socket.on("error", (error) => ctx.logger.debug({ err: error }, "WebSocket error"));
  }

  async run(): Promise<void> {
    const outcome = await this.readLoop();
    switch (outcome.end) {
      case "client_closed":
        return;
      case "shutdown":
        return this.close(CLOSE_GOING_AWAY, "server shutting down");
      case "deleted":
        return this.close(CLOSE_DELETED, "inbox deleted");
      case "closed":
        return this.close(CLOSE_NORMAL, "stream closed");
      case "unresponsive":
        this.socket.terminate();
        return;
      case "gone":
        this.socket.send(
          JSON.stringify({
            type: "gone",
            earliestOffset: outcome.earliestOffset,
            ...(outcome.snapshot ? { snapshot: outcome.snapshot } : {}),
          }),
        );
        return this.close(CLOSE_GONE, "offset behind retention");
      case "failed":
        this.ctx.logger.error({ err: outcome.error }, "WebSocket read failed");
        return this.close(closeCodeOf(outcome.error, this.ctx.store), "read failed");
    }
  }

  /** Sends a close frame once; a peer that does not answer it in time is cut off. */
  close(code: number, reason: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.done.abort();
    this.socket.close(code, reason);
    const force = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    this.socket.once("close", () => clearTimeout(force));
  }

  private async readLoop(): Promise<LoopEnd> {
    const idleMs = () => this.ctx.config.sseKeepAliveMs;
    try {
      const items = this.ctx.live.follow(this.streamId, { afterSeq: this.afterSeq, view: this.view, idleMs, signal: this.done.signal });
      for await (const item of items) {
        switch (item.kind) {
          case "page":
            await this.sendPage(item.messages, item.stream.horizonSeq);
            this.afterSeq = item.lastSeq;
            break;
          case "up-to-date":
            this.socket.send(`{"type":"up-to-date","offset":"${formatOffset(item.seq)}"}`);
            break;
          case "idle":
            if (this.unansweredPings >= MAX_UNANSWERED_PINGS) return { end: "unresponsive" };
            this.unansweredPings++;
            this.socket.ping();
            break;
          case "gone":
            return {
              end: "gone",
              earliestOffset: formatOffset(item.earliestSeq),
              snapshot: item.snapshot ? snapshotPath(this.streamName) : undefined,
            };
          case "deleted":
          case "closed":
          case "shutdown":
            return { end: item.kind };
        }
      }
    } catch (error) {
      if (!this.done.signal.aborted) return { end: "failed", error };
    }
    return this.ctx.waiters.stopped.aborted ? { end: "shutdown" } : { end: "client_closed" };
  }

  /** Queues a page; if the socket is backed up, waits until it has been written out. */
  private async sendPage(messages: StoredMessage[], horizonSeq: number): Promise<void> {
    let last: Promise<void> | undefined;
    messages.forEach((message, index) => {
      if (index < messages.length - 1) this.socket.send(eventFrame(message, horizonSeq));
      else last = sendText(this.socket, eventFrame(message, horizonSeq), this.done.signal);
    });
    if (this.socket.bufferedAmount >= HIGH_WATER_BYTES) await last;
  }
}

export function registerWebSocketRoutes(app: FastifyInstance, ctx: HttpContext): void {
  // Compression is off: it costs CPU and memory per socket, and envelopes are small.
  const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 4096 });
  const open = new Set<InboxConnection>();
  ctx.waiters.stopped.addEventListener("abort", () => {
    for (const connection of open) connection.close(CLOSE_GOING_AWAY, "server shutting down");
  });

  // Node hands this listener only WebSocket upgrades of /v1/ws/… (connections.ts serves
  // every other upgrade offer as an ordinary request); another WebSocket endpoint belongs here.
  app.server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const onEarlyError = () => socket.destroy();
    socket.on("error", onEarlyError);
    openInboxStream(ctx, request).then(
      ({ stream, afterSeq, view }) => {
        socket.off("error", onEarlyError);
        if (socket.destroyed) return;
        wss.handleUpgrade(request, socket, head, (ws) => {
          noteUpgradeStatus(request, 101);
          const connection = new InboxConnection(ctx, ws, stream.id, afterSeq, view, stream.name);
          ctx.metrics.trackReader("websocket", ws);
          open.add(connection);
          ws.once("close", () => open.delete(connection));
          if (ctx.waiters.stopped.aborted) connection.close(CLOSE_GOING_AWAY, "server shutting down");
          else void connection.run();
        });
      },
      (error: unknown) => {
        const reply = toErrorReply(error, ctx.store);
        noteUpgradeStatus(request, reply.status);
        if (reply.status >= 500) noteFailure(request, error);
        if (!socket.destroyed) refuseUpgrade(socket, reply);
      },
    );
  });

  app.get("/v1/ws/inbox/:id", async () => {
    throw new TailhookError("bad_request", "this endpoint needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)");
  });
}
