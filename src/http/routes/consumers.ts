/*
 * The management API for consumers: named, server-side cursors on an inbox's stream.
 * An inbox's own token is enough to use that inbox's consumers.
 */
import type { FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { firstUnackedSeq, viewConsumer } from "../../core/consumers.js";
import { TailhookError } from "../../core/errors.js";
import { parseOffset } from "../../core/offsets.js";
import type { Consumer, StreamInfo } from "../../core/types.js";
import { requestToken } from "../auth.js";
import type { HttpContext } from "../context.js";
import { authorizeInboxStream, resolveStart } from "../stream-reads.js";
import { bearerAuth, ErrorReplies, InboxParams, NoContent, TokenQuery, type InboxRequest } from "../schemas/common.js";
import { ConsumerAck, ConsumerCreate, ConsumerList, ConsumerParams, ConsumerView } from "../schemas/consumer.js";

const TAGS = ["consumers"];
const schema = <Extra extends object>(summary: string, extra: Extra) => ({
  tags: TAGS,
  summary,
  security: bearerAuth,
  params: ConsumerParams,
  querystring: TokenQuery,
  ...extra,
});

export function registerConsumerRoutes(fastify: FastifyInstance, ctx: HttpContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  async function openStream(request: InboxRequest): Promise<StreamInfo> {
    return (await authorizeInboxStream(ctx, requestToken(request), request.params.id)).stream;
  }

  async function view(stream: StreamInfo, consumer: Consumer) {
    // Only the time of the oldest unacked event, not its body.
    const seq = firstUnackedSeq(consumer, stream);
    const oldest = seq <= stream.tailSeq ? await ctx.store.messageTime(stream.id, seq) : undefined;
    return viewConsumer(consumer, stream, oldest ?? null, Date.now());
  }

  app.get(
    "/api/inboxes/:id/consumers",
    {
      schema: {
        tags: TAGS,
        summary: "An inbox's consumers with their lag",
        security: bearerAuth,
        params: InboxParams,
        querystring: TokenQuery,
        response: { 200: ConsumerList, ...ErrorReplies },
      },
    },
    async (request) => {
      const stream = await openStream(request);
      const consumers = await ctx.store.listConsumers(stream.id);
      return { consumers: await Promise.all(consumers.map((consumer) => view(stream, consumer))) };
    },
  );

  app.get(
    "/api/inboxes/:id/consumers/:name",
    { schema: schema("One consumer", { response: { 200: ConsumerView, ...ErrorReplies } }) },
    async (request) => {
      const stream = await openStream(request);
      const consumer = await ctx.store.getConsumer(stream.id, request.params.name);
      if (!consumer) throw new TailhookError("not_found", "no such consumer");
      return view(stream, consumer);
    },
  );

  // Creates the consumer at `from` (start of the retained events by default); an
  // existing consumer is returned unchanged.
  app.put(
    "/api/inboxes/:id/consumers/:name",
    {
      schema: schema("Create a consumer (200 with the existing one unchanged)", {
        body: ConsumerCreate,
        response: { 200: ConsumerView, 201: ConsumerView, ...ErrorReplies },
      }),
    },
    async (request, reply) => {
      const stream = await openStream(request);
      const { name } = request.params;
      const existing = await ctx.store.getConsumer(stream.id, name);
      if (existing) return reply.code(200).send(await view(stream, existing));
      const { from } = request.body;
      const consumer = await ctx.store.ensureConsumer(stream.id, name, resolveStart(stream, from === "start" ? "-1" : from));
      return reply.code(201).send(await view(stream, consumer));
    },
  );

  // Commits everything up to `offset`. Acks never move a consumer backwards.
  app.post(
    "/api/inboxes/:id/consumers/:name/ack",
    {
      schema: schema("Commit everything up to an offset (never backwards)", {
        body: ConsumerAck,
        response: { 200: ConsumerView, ...ErrorReplies },
      }),
    },
    async (request) => {
      const stream = await openStream(request);
      const { offset } = request.body;
      if (offset === "-1" || offset === "now") throw new TailhookError("bad_request", "offset must be an offset the server issued");
      const seq = resolveAckOffset(stream, offset);
      return view(stream, await ctx.store.ackConsumer(stream.id, request.params.name, seq));
    },
  );

  app.delete(
    "/api/inboxes/:id/consumers/:name",
    { schema: schema("Delete a consumer", { response: { 204: NoContent, ...ErrorReplies } }) },
    async (request, reply) => {
      const stream = await openStream(request);
      if (!(await ctx.store.deleteConsumer(stream.id, request.params.name))) throw new TailhookError("not_found", "no such consumer");
      return reply.code(204).send(null);
    },
  );
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
