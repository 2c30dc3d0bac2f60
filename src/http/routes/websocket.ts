/*
 * Streams over WebSocket, for clients that would rather hold one socket than reconnect
 * SSE or long-poll: /v1/ws/stream/<name> for any stream (general, state, and inboxes
 * as inbox/<id>), with offset=snapshot, and the older /v1/ws/inbox/<id>. The same
 * offsets, pages, retention checks and wake-ups as the Durable Streams reads. The
 * upgrade is taken on the server's raw `upgrade` event with `ws`, so every refusal
 * before it (400, 401, 404) is a real HTTP reply with the usual JSON error body, never
 * an accepted socket that closes at once. Frames: src/http/websocket/frames.ts.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";
import { WebSocketServer } from "ws";
import { TailhookError } from "../../core/errors.js";
import type { HttpContext } from "../context.js";
import { toErrorReply, type ErrorReply } from "../errors.js";
import { noteFailure, noteUpgradeStatus } from "../request-log.js";
import { CLOSE_GOING_AWAY, StreamConnection } from "../websocket/connection.js";
import { openUpgrade } from "../websocket/open.js";

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

export function registerWebSocketRoutes(app: FastifyInstance, ctx: HttpContext): void {
  // Compression is off: it costs CPU and memory per socket, and envelopes are small.
  const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 4096 });
  const open = new Set<StreamConnection>();
  ctx.waiters.stopped.addEventListener("abort", () => {
    for (const connection of open) connection.close(CLOSE_GOING_AWAY, "server shutting down");
  });

  // Node hands this listener only WebSocket upgrades of /v1/ws/… (connections.ts serves
  // every other upgrade offer as an ordinary request); another WebSocket endpoint belongs here.
  app.server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const onEarlyError = () => socket.destroy();
    socket.on("error", onEarlyError);
    openUpgrade(ctx, request).then(
      (options) => {
        socket.off("error", onEarlyError);
        if (socket.destroyed) return;
        wss.handleUpgrade(request, socket, head, (ws) => {
          noteUpgradeStatus(request, 101);
          const connection = new StreamConnection(ctx, ws, options);
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

  const needsUpgrade = async () => {
    throw new TailhookError("bad_request", "this endpoint needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)");
  };
  app.get("/v1/ws/inbox/:id", needsUpgrade);
  app.get("/v1/ws/stream/*", needsUpgrade);
}
