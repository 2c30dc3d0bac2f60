/*
 * The management API for consumers: named, server-side cursors on an inbox's stream.
 * An inbox's own token is enough to use that inbox's consumers.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { firstUnackedSeq, parseConsumerName, viewConsumer } from "../../core/consumers.js";
import { TailhookError } from "../../core/errors.js";
import { parseOffset } from "../../core/offsets.js";
import type { Consumer, StreamInfo } from "../../core/types.js";
import { presentedToken } from "../auth.js";
import type { HttpContext } from "../context.js";
import { authorizeInboxStream, resolveStart } from "../stream-reads.js";

interface Target {
  stream: StreamInfo;
  name: string;
}

export function registerConsumerRoutes(app: FastifyInstance, ctx: HttpContext): void {
  async function openStream(request: FastifyRequest): Promise<StreamInfo> {
    const { id } = request.params as { id: string };
    const token = presentedToken(request.headers, request.query as Record<string, unknown>);
    return (await authorizeInboxStream(ctx, token, id)).stream;
  }

  async function openConsumer(request: FastifyRequest): Promise<Target> {
    const stream = await openStream(request);
    return { stream, name: parseConsumerName((request.params as { name: string }).name) };
  }

  async function view(stream: StreamInfo, consumer: Consumer) {
    // Only the time of the oldest unacked event, not its body.
    const seq = firstUnackedSeq(consumer, stream);
    const oldest = seq <= stream.tailSeq ? await ctx.store.messageTime(stream.id, seq) : undefined;
    return viewConsumer(consumer, stream, oldest ?? null, Date.now());
  }

  function bodyOf(request: FastifyRequest): Record<string, unknown> {
    const body = request.body ?? {};
    if (typeof body !== "object" || Array.isArray(body)) throw new TailhookError("bad_request", "the body must be a JSON object");
    return body as Record<string, unknown>;
  }

  app.get("/api/inboxes/:id/consumers", async (request) => {
    const stream = await openStream(request);
    const consumers = await ctx.store.listConsumers(stream.id);
    return { consumers: await Promise.all(consumers.map((consumer) => view(stream, consumer))) };
  });

  app.get("/api/inboxes/:id/consumers/:name", async (request) => {
    const { stream, name } = await openConsumer(request);
    const consumer = await ctx.store.getConsumer(stream.id, name);
    if (!consumer) throw new TailhookError("not_found", "no such consumer");
    return view(stream, consumer);
  });

  // Creates the consumer at `from` (start of the retained events by default); an
  // existing consumer is returned unchanged.
  app.put("/api/inboxes/:id/consumers/:name", async (request, reply) => {
    const { stream, name } = await openConsumer(request);
    const existing = await ctx.store.getConsumer(stream.id, name);
    if (existing) return reply.code(200).send(await view(stream, existing));
    const from = bodyOf(request).from;
    if (from !== undefined && typeof from !== "string") throw new TailhookError("bad_request", "from must be a string");
    const consumer = await ctx.store.ensureConsumer(stream.id, name, resolveStart(stream, from === "start" ? "-1" : from));
    return reply.code(201).send(await view(stream, consumer));
  });

  // Commits everything up to `offset`. Acks never move a consumer backwards.
  app.post("/api/inboxes/:id/consumers/:name/ack", async (request) => {
    const { stream, name } = await openConsumer(request);
    const offset = bodyOf(request).offset;
    if (typeof offset !== "string" || offset === "-1" || offset === "now") {
      throw new TailhookError("bad_request", "offset must be an offset the server issued");
    }
    const seq = resolveAckOffset(stream, offset);
    return view(stream, await ctx.store.ackConsumer(stream.id, name, seq));
  });

  app.delete("/api/inboxes/:id/consumers/:name", async (request, reply) => {
    const { stream, name } = await openConsumer(request);
    if (!(await ctx.store.deleteConsumer(stream.id, name))) throw new TailhookError("not_found", "no such consumer");
    return reply.code(204).send();
  });
}

/** Any issued offset up to the tail may be acked, even one retention has passed. */
function resolveAckOffset(stream: StreamInfo, offset: string): number {
  try {
    return resolveStart(stream, offset);
  } catch (error) {
    const parsed = parseOffset(offset);
    if (error instanceof TailhookError && error.code === "gone" && parsed?.kind === "after") return parsed.seq;
    throw error;
  }
}
