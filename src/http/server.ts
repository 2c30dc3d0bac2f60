/*
 * The HTTP server: webhook ingest and stream appends on bare node:http (ingest.ts,
 * append-handler.ts), everything else through Fastify, with one error funnel for all.
 */
import { createServer, type Server } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import type { HttpContext } from "./context.js";
import { discardBody } from "./body.js";
import { guardConnections, inRequestOrder, serverOptions } from "./connections.js";
import { refusalReply, toErrorReply } from "./errors.js";
import { TailhookError } from "../core/errors.js";
import { ajvOptions, emptyBodyAsObject, formatSchemaErrors } from "./validation.js";
import { createIngestHandler, parseIngestUrl } from "./ingest.js";
import { createAppendHandler, parseAppendUrl } from "./append-handler.js";
import { logRequest, logUpgrade, noteFailure, recordRouteNames } from "./request-log.js";
import { registerConsumerRoutes } from "./routes/consumers.js";
import { registerInboxRoutes } from "./routes/inboxes.js";
import { registerExampleRoutes } from "./routes/examples.js";
import { registerInspectorRoutes } from "./routes/inspector.js";
import { registerSmeeRoutes } from "./routes/smee.js";
import { registerStreamRoutes } from "./routes/streams.js";
import { registerStreamTokenRoutes } from "./routes/stream-tokens.js";
import { registerWebSocketRoutes } from "./routes/websocket.js";
import { generalStreamsFor } from "./protocol/stream-access.js";
import { streamDirectory } from "./protocol/stream-directory.js";
import { registerSubscriptionRoutes } from "../subscriptions/routes.js";
import type { SubscriptionHost } from "../subscriptions/service-host.js";
import { RefusalLog } from "../core/verify/refusals.js";
import { registerVerificationRoutes } from "./routes/verification.js";
import { registerHealthRoutes } from "./routes/health.js";
import { registerOpenApi } from "./openapi.js";
import { SourceRecords } from "../sources/records.js";
import { registerSourceRoutes } from "../sources/routes.js";
import { countRequest, countUpgrade, registerMetricsRoute } from "../metrics/http-metrics.js";

export interface HttpServer {
  app: FastifyInstance;
  server: Server;
  /**
   * The Durable Streams subscriptions: lead() after listening (on a shared store, only
   * while this process leads), close() before the store.
   */
  subscriptions: SubscriptionHost | undefined;
}

export function buildHttpServer(ctx: HttpContext): HttpServer {
  let server: Server | undefined;
  const refusals = new RefusalLog();
  const ingest = createIngestHandler({
    refusals,
    store: ctx.store,
    defaultMaxBodyBytes: ctx.config.maxBodyBytes,
    isShuttingDown: ctx.isShuttingDown,
    logger: ctx.logger,
    metrics: ctx.metrics,
  });
  const appendToStream = createAppendHandler(ctx);
  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    // Consumer names may be 100 characters; let the routes give the clear 400, not a 414.
    routerOptions: { maxParamLength: 500 },
    bodyLimit: 1024 * 1024,
    // Route schemas validate requests (http/validation.ts); failures take our one error shape.
    ajv: ajvOptions,
    schemaErrorFormatter: formatSchemaErrors,
    // connections.ts answers parse errors and timeouts, after the replies already in flight.
    clientErrorHandler: () => undefined,
    serverFactory: (route) => {
      // inRequestOrder: targets in origin form, one request at a time per connection.
      server = createServer(
        serverOptions(ctx.config),
        inRequestOrder((req, res) => {
          logRequest(req, res, ctx.logger);
          countRequest(ctx.metrics, req, res);
          const url = req.url ?? "/";
          const target = parseIngestUrl(url);
          if (target) return void ingest(req, res, target);
          const append = parseAppendUrl(req.method, url);
          if (append) return void appendToStream(req, res, append);
          route(req, res);
        }),
      );
      guardConnections(server, ctx.config);
      // Registered before the WebSocket route's listener, so the upgrade is tracked first.
      server.on("upgrade", (req, socket) => logUpgrade(req, socket, ctx.logger));
      server.on("upgrade", (req, socket) => countUpgrade(ctx.metrics, req, socket));
      return server;
    },
  });

  app.setErrorHandler(async (error, request, reply) => {
    const errorReply = toErrorReply(error, ctx.store);
    // A client still sending a refused body would see a reset instead of the 413.
    if (errorReply.status === 413 && !(await discardBody(request.raw))) reply.header("connection", "close");
    if (errorReply.status >= 500) noteFailure(request.raw, error);
    return reply.code(errorReply.status).headers(errorReply.headers).send(errorReply.body);
  });
  app.setNotFoundHandler((_request, reply) => {
    const notFound = refusalReply(new TailhookError("not_found", "no such route"));
    return reply.code(notFound.status).send(notFound.body);
  });

  recordRouteNames(app);
  emptyBodyAsObject(app);

  registerMetricsRoute(app, ctx.metrics, ctx.auth);
  registerOpenApi(app);
  const general = ctx.store.general;
  // The JSON API in a scope of its own, loaded after the OpenAPI generator so that it sees these routes.
  void app.register(async (api) => {
    registerHealthRoutes(api, ctx);
    registerInboxRoutes(api, ctx);
    registerVerificationRoutes(api, ctx, refusals);
    registerConsumerRoutes(api, ctx);
    if (general) registerSourceRoutes(api, ctx, new SourceRecords(general));
    registerStreamTokenRoutes(api, ctx);
  });
  // The reserved __ds routes are more specific than the stream routes, so they win.
  const subscriptions = general
    ? registerSubscriptionRoutes(app, {
        directory: streamDirectory(ctx.store, general),
        records: general,
        baseUrl: ctx.baseUrl,
        logger: ctx.logger,
        allowLocalhostWebhooks: ctx.config.allowLocalWebhooks,
        ...(ctx.resolveWebhookHost ? { resolveWebhookHost: ctx.resolveWebhookHost } : {}),
        authorize: (request) => void generalStreamsFor(ctx, request),
      })
    : undefined;
  registerStreamRoutes(app, ctx);
  registerSmeeRoutes(app, ctx);
  registerWebSocketRoutes(app, ctx);
  registerInspectorRoutes(app);
  registerExampleRoutes(app);
  return { app, server: server!, subscriptions };
}
