/*
 * The probes. Ready: the store answers now (PostgreSQL reachable) and its writes work.
 * Healthy: the process can serve. No token: load balancers call them.
 */
import type { FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Type from "typebox";
import type { HttpContext } from "../context.js";
import { ErrorReply } from "../schemas/common.js";

const Status = <Up extends string, Down extends string>(up: Up, down: Down) =>
  Type.Object({ status: Type.Union([Type.Literal(up), Type.Literal(down)]) });

export function registerHealthRoutes(fastify: FastifyInstance, ctx: HttpContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const ready = Status("ready", "not ready");
  app.get(
    "/readyz",
    {
      schema: {
        tags: ["health"],
        summary: "Ready for traffic: the store answers and its writes work",
        response: { 200: ready, 503: Type.Union([ready, ErrorReply]) },
      },
    },
    async (_request, reply) => {
      const reachable = ctx.store.ping ? await ctx.store.ping() : true;
      const isReady = !ctx.isShuttingDown() && reachable && ctx.store.isHealthy();
      return reply.code(isReady ? 200 : 503).send({ status: isReady ? "ready" : "not ready" });
    },
  );
  const health = Status("ok", "unavailable");
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["health"],
        summary: "The process can serve (503 while the store cannot write or it is stopping)",
        response: { 200: health, 503: Type.Union([health, ErrorReply]) },
      },
    },
    async (_request, reply) => {
      const healthy = ctx.store.isHealthy() && !ctx.isShuttingDown();
      return reply.code(healthy ? 200 : 503).send({ status: healthy ? "ok" : "unavailable" });
    },
  );
}
