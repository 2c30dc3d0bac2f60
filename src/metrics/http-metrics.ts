/*
 * /metrics over HTTP: on the main port behind the admin token, and, when
 * --metrics-port is set, open on a listener of its own bound to 127.0.0.1 (for a
 * Prometheus on the same host, with no token to keep). Also counts every request by
 * the route pattern the request log noted, never by its URL.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";
import { requestToken, type Authorizer } from "../http/auth.js";
import { notedOutcome } from "../http/request-log.js";
import type { Metrics } from "./metrics.js";

export const METRICS_PATH = "/metrics";
/** The separate metrics listener is for local scrapers only. */
const METRICS_HOST = "127.0.0.1";

/** Counts the request once its response is over (status 0: the client left first). */
export function countRequest(metrics: Metrics, req: IncomingMessage, res: ServerResponse): void {
  res.once("close", () => metrics.countRequest(req.method ?? "GET", notedOutcome(req).route, res.headersSent ? res.statusCode : 0));
}

/** Counts an upgrade (WebSocket) when its socket closes: 101 when accepted, else the refusal's status. */
export function countUpgrade(metrics: Metrics, req: IncomingMessage, socket: Duplex): void {
  socket.once("close", () => {
    const { route, upgradeStatus } = notedOutcome(req);
    metrics.countRequest(req.method ?? "GET", route, upgradeStatus ?? 0);
  });
}

export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics, auth: Authorizer): void {
  app.get(METRICS_PATH, async (request, reply) => {
    auth.requireAdmin(requestToken(request));
    const text = await metrics.render();
    return reply.code(200).header("content-type", metrics.contentType).header("cache-control", "no-store").send(text);
  });
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

/** The open listener for --metrics-port: GET /metrics and nothing else. */
export async function startMetricsListener(metrics: Metrics, port: number): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== METRICS_PATH || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    metrics.render().then(
      (text) =>
        res
          .writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" })
          .end(req.method === "HEAD" ? undefined : text),
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics are unavailable\n"),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, METRICS_HOST, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${METRICS_HOST}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
