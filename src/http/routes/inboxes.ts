/*
 * The management API for inboxes and their stored events. Creating, listing,
 * changing and deleting inboxes needs the admin token; reading an inbox and its
 * events also accepts that inbox's own token.
 */
import type { FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Static } from "typebox";
import { buildEnvelope, findContentType, headerPairs, messageJson } from "../../core/capture.js";
import { TailhookError } from "../../core/errors.js";
import { hashToken, newInboxId, newToken } from "../../core/ids.js";
import { parseInboxName, parseInboxSettings } from "../../core/inbox-settings.js";
import { inboxActivity } from "../../core/silence.js";
import type { Inbox, StoredInbox, StoredMessage } from "../../core/types.js";
import { parsedEmailView } from "../../email/parsed-view.js";
import { maskVerifySettings, type InboxSettingsView } from "../../core/verify/settings.js";
import { requestToken } from "../auth.js";
import { type HttpContext } from "../context.js";
import { inboxStreamName } from "../../core/stream-names.js";
import { authorizeInboxRead } from "../stream-reads.js";
import { smeeUrlFor } from "./smee.js";
import { withDeliveries } from "./event-deliveries.js";
import { bearerAuth, ErrorReplies, InboxParams, NoContent, TokenQuery, type InboxRequest } from "../schemas/common.js";
import {
  CreatedInbox,
  EventEnvelope,
  EventParams,
  InboxInput,
  InboxList,
  InboxView as InboxViewSchema,
  ParsedEmail,
} from "../schemas/inbox.js";
import type { InboxView } from "../../core/inbox-view.js";

const TAGS = ["inboxes"];
const eventRoute = <Reply extends Record<number, unknown>>(summary: string, reply: Reply) => ({
  schema: {
    tags: ["events"],
    summary,
    security: bearerAuth,
    params: EventParams,
    querystring: TokenQuery,
    response: { ...reply, ...ErrorReplies },
  },
});

/** Secrets are write-only: the verify secrets are shown as a count. */
function publicSettings({ verify, ...rest }: Inbox["settings"]): InboxSettingsView {
  return verify ? { ...rest, verify: maskVerifySettings(verify) } : rest;
}

export function registerInboxRoutes(fastify: FastifyInstance, ctx: HttpContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  async function view(inbox: Inbox): Promise<InboxView> {
    const base = ctx.baseUrl();
    const stream = await ctx.store.getStreamById(inbox.streamId);
    const lastSeq = stream?.tailSeq ?? 0;
    const lastEventAt = lastSeq > 0 ? ((await ctx.store.messageTime(inbox.streamId, lastSeq)) ?? null) : null;
    return {
      id: inbox.id,
      name: inbox.name,
      ingestUrl: `${base}/h/${inbox.id}`,
      streamUrl: `${base}/v1/stream/${inboxStreamName(inbox.id)}`,
      settings: publicSettings(inbox.settings),
      createdAt: new Date(inbox.createdAt).toISOString(),
      ...inboxActivity(inbox.settings, inbox.createdAt, lastSeq, lastEventAt, Date.now()),
    };
  }

  async function readInboxEvent(
    request: InboxRequest<{ id: string; seq: string }>,
  ): Promise<{ inbox: StoredInbox; message: StoredMessage }> {
    const inbox = await authorizeInboxRead(ctx, requestToken(request), request.params.id);
    const seq = Number(request.params.seq);
    const message = await ctx.store.readMessage(inbox.streamId, seq);
    if (!message) {
      const stream = await ctx.store.getStreamById(inbox.streamId);
      if (stream && seq < stream.firstSeq) throw new TailhookError("gone", "this event was removed by retention");
      throw new TailhookError("not_found", "no such event");
    }
    return { inbox, message };
  }

  app.post(
    "/api/inboxes",
    {
      schema: {
        tags: TAGS,
        summary: "Create an inbox (admin)",
        security: bearerAuth,
        querystring: TokenQuery,
        body: InboxInput,
        response: { 201: CreatedInbox, ...ErrorReplies },
      },
    },
    async (request, reply) => {
      ctx.auth.requireAdmin(requestToken(request));
      const { body } = request;
      const token = newToken("thk");
      const inbox = await ctx.store.createInbox({
        id: newInboxId(),
        name: parseInboxName(body.name),
        tokenHash: hashToken(token),
        settings: parseInboxSettings(body.settings ?? undefined),
      });
      // smeeUrl carries the token, so only this reply can have it (GET and list omit it).
      return reply.code(201).send({ ...(await view(inbox)), token, smeeUrl: smeeUrlFor(ctx.baseUrl(), inbox.id, token) });
    },
  );

  app.get(
    "/api/inboxes",
    {
      schema: {
        tags: TAGS,
        summary: "List the inboxes (admin)",
        security: bearerAuth,
        querystring: TokenQuery,
        response: { 200: InboxList, ...ErrorReplies },
      },
    },
    async (request) => {
      ctx.auth.requireAdmin(requestToken(request));
      const inboxes = await ctx.store.listInboxes();
      return { inboxes: await Promise.all(inboxes.map(view)) };
    },
  );

  app.get(
    "/api/inboxes/:id",
    {
      schema: {
        tags: TAGS,
        summary: "One inbox (admin or the inbox's token)",
        security: bearerAuth,
        params: InboxParams,
        querystring: TokenQuery,
        response: { 200: InboxViewSchema, ...ErrorReplies },
      },
    },
    async (request) => view(await authorizeInboxRead(ctx, requestToken(request), request.params.id)),
  );

  app.patch(
    "/api/inboxes/:id",
    {
      schema: {
        tags: TAGS,
        summary: "Rename an inbox or change its settings (admin); settings are merged, null removes a key",
        security: bearerAuth,
        params: InboxParams,
        querystring: TokenQuery,
        body: InboxInput,
        response: { 200: InboxViewSchema, ...ErrorReplies },
      },
    },
    async (request) => {
      ctx.auth.requireAdmin(requestToken(request));
      const { id } = request.params;
      const existing = await ctx.store.getInbox(id);
      if (!existing) throw new TailhookError("not_found", "no such inbox");
      const { body } = request;
      const updated = await ctx.store.updateInbox(id, {
        ...(body.name !== undefined ? { name: parseInboxName(body.name) } : {}),
        ...(body.settings !== undefined ? { settings: parseInboxSettings(body.settings, existing.settings) } : {}),
      });
      if (!updated) throw new TailhookError("not_found", "no such inbox");
      return view(updated);
    },
  );

  app.delete(
    "/api/inboxes/:id",
    {
      schema: {
        tags: TAGS,
        summary: "Delete an inbox and its events (admin)",
        security: bearerAuth,
        params: InboxParams,
        querystring: TokenQuery,
        response: { 204: NoContent, ...ErrorReplies },
      },
    },
    async (request, reply) => {
      ctx.auth.requireAdmin(requestToken(request));
      if (!(await ctx.store.deleteInbox(request.params.id))) throw new TailhookError("not_found", "no such inbox");
      return reply.code(204).send(null);
    },
  );

  // The envelope is sent as the JSON the store gave (no re-serialization); the schema documents it.
  app.get("/api/inboxes/:id/events/:seq", eventRoute("One event's envelope", { 200: EventEnvelope }), async (request, reply) => {
    const { inbox, message } = await readInboxEvent(request);
    const json =
      !inbox.settings.dedupe || message.meta === null
        ? messageJson(message)
        : JSON.stringify(await withDeliveries(ctx.store, inbox, message));
    // Fastify sends a string as it is; the schema types objects, so say what this string is.
    return reply.type("application/json").send(json as unknown as Static<typeof EventEnvelope>);
  });

  // Mail events only: parsed on each request, never stored (docs/email.md).
  app.get(
    "/api/inboxes/:id/events/:seq/email",
    eventRoute("A mail event's parsed view (400 for other events)", { 200: ParsedEmail }),
    async (request) => {
      const { message } = await readInboxEvent(request);
      // The content type from the stored meta (capture.ts), without base64-ing the whole message for an envelope.
      const rawHeaders = message.meta === null ? [] : ((JSON.parse(message.meta) as unknown[])[5] as string[]);
      if (findContentType(headerPairs(rawHeaders))?.toLowerCase() !== "message/rfc822") {
        throw new TailhookError("bad_request", "this event is not an email (its content type is not message/rfc822)");
      }
      return parsedEmailView(message.data);
    },
  );

  // The exact bytes, under the sender's content type: documented as binary, never serialized.
  const bodyReply = {
    200: {
      description: "the exact body bytes, with the original Content-Type",
      content: { "*/*": { schema: { type: "string", format: "binary" } } },
    },
  };
  app.get("/api/inboxes/:id/events/:seq/body", eventRoute("One event's exact body bytes", bodyReply), async (request, reply) => {
    const { message } = await readInboxEvent(request);
    const { contentType } = buildEnvelope(message);
    // The body is the sender's, not ours: never let a browser run it on our origin.
    return reply
      .headers({
        "content-type": contentType ?? "application/octet-stream",
        "x-content-type-options": "nosniff",
        "content-security-policy": "sandbox",
      })
      .send(message.data);
  });
}
