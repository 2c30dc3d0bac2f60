/*
 * The management API for inboxes and their stored events. Creating, listing,
 * changing and deleting inboxes needs the admin token; reading an inbox and its
 * events also accepts that inbox's own token.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { buildEnvelope, findContentType, headerPairs, messageJson } from "../../core/capture.js";
import { TailhookError } from "../../core/errors.js";
import { hashToken, newInboxId, newToken } from "../../core/ids.js";
import { parseInboxName, parseInboxSettings } from "../../core/inbox-settings.js";
import { inboxActivity } from "../../core/silence.js";
import type { Inbox, StoredInbox, StoredMessage } from "../../core/types.js";
import { parsedEmailView } from "../../email/parsed-view.js";
import { maskVerifySettings, type InboxSettingsView } from "../../core/verify/settings.js";
import { presentedToken } from "../auth.js";
import { type HttpContext } from "../context.js";
import { inboxStreamName } from "../../core/stream-names.js";
import { authorizeInboxRead } from "../stream-reads.js";
import { smeeUrlFor } from "./smee.js";
import { withDeliveries } from "./event-deliveries.js";

export interface InboxView {
  id: string;
  name: string | null;
  ingestUrl: string;
  streamUrl: string;
  settings: InboxSettingsView;
  createdAt: string;
  lastSeq: number;
  lastEventAt: string | null;
  silent: boolean;
  silentSince: string | null;
}

/** Secrets are write-only: the verify secrets are shown as a count. */
function publicSettings({ verify, ...rest }: Inbox["settings"]): InboxSettingsView {
  return verify ? { ...rest, verify: maskVerifySettings(verify) } : rest;
}

function tokenOf(request: FastifyRequest): string | undefined {
  return presentedToken(request.headers, request.query as Record<string, unknown>);
}

function bodyObject(request: FastifyRequest): Record<string, unknown> {
  const body = request.body ?? {};
  if (typeof body !== "object" || Array.isArray(body)) throw new TailhookError("bad_request", "the body must be a JSON object");
  return body as Record<string, unknown>;
}

function parseSeq(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) throw new TailhookError("bad_request", `not an event number: ${raw}`);
  return Number(raw);
}

export function registerInboxRoutes(app: FastifyInstance, ctx: HttpContext): void {
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

  async function readableInbox(request: FastifyRequest): Promise<StoredInbox> {
    const { id } = request.params as { id: string };
    return authorizeInboxRead(ctx, tokenOf(request), id);
  }

  async function readEvent(request: FastifyRequest): Promise<StoredMessage> {
    return (await readInboxEvent(request)).message;
  }

  async function readInboxEvent(request: FastifyRequest): Promise<{ inbox: StoredInbox; message: StoredMessage }> {
    const inbox = await readableInbox(request);
    const seq = parseSeq((request.params as { seq: string }).seq);
    const message = await ctx.store.readMessage(inbox.streamId, seq);
    if (!message) {
      const stream = await ctx.store.getStreamById(inbox.streamId);
      if (stream && seq < stream.firstSeq) throw new TailhookError("gone", "this event was removed by retention");
      throw new TailhookError("not_found", "no such event");
    }
    return { inbox, message };
  }

  app.post("/api/inboxes", async (request, reply) => {
    ctx.auth.requireAdmin(tokenOf(request));
    const body = bodyObject(request);
    const token = newToken("thk");
    const inbox = await ctx.store.createInbox({
      id: newInboxId(),
      name: parseInboxName(body.name),
      tokenHash: hashToken(token),
      settings: parseInboxSettings(body.settings),
    });
    // smeeUrl carries the token, so only this reply can have it (GET and list omit it).
    return reply.code(201).send({ ...(await view(inbox)), token, smeeUrl: smeeUrlFor(ctx.baseUrl(), inbox.id, token) });
  });

  app.get("/api/inboxes", async (request) => {
    ctx.auth.requireAdmin(tokenOf(request));
    const inboxes = await ctx.store.listInboxes();
    return { inboxes: await Promise.all(inboxes.map(view)) };
  });

  app.get("/api/inboxes/:id", async (request) => view(await readableInbox(request)));

  app.patch("/api/inboxes/:id", async (request) => {
    ctx.auth.requireAdmin(tokenOf(request));
    const { id } = request.params as { id: string };
    const existing = await ctx.store.getInbox(id);
    if (!existing) throw new TailhookError("not_found", "no such inbox");
    const body = bodyObject(request);
    const updated = await ctx.store.updateInbox(id, {
      ...(body.name !== undefined ? { name: parseInboxName(body.name) } : {}),
      ...(body.settings !== undefined ? { settings: parseInboxSettings(body.settings, existing.settings) } : {}),
    });
    if (!updated) throw new TailhookError("not_found", "no such inbox");
    return view(updated);
  });

  app.delete("/api/inboxes/:id", async (request, reply) => {
    ctx.auth.requireAdmin(tokenOf(request));
    const { id } = request.params as { id: string };
    if (!(await ctx.store.deleteInbox(id))) throw new TailhookError("not_found", "no such inbox");
    return reply.code(204).send();
  });

  app.get("/api/inboxes/:id/events/:seq", async (request, reply) => {
    const { inbox, message } = await readInboxEvent(request);
    if (!inbox.settings.dedupe || message.meta === null) return reply.type("application/json").send(messageJson(message));
    return reply.type("application/json").send(JSON.stringify(await withDeliveries(ctx.store, inbox, message)));
  });

  // Mail events only: parsed on each request, never stored (docs/email.md).
  app.get("/api/inboxes/:id/events/:seq/email", async (request) => {
    const message = await readEvent(request);
    // The content type from the stored meta (capture.ts), without base64-ing the whole message for an envelope.
    const rawHeaders = message.meta === null ? [] : ((JSON.parse(message.meta) as unknown[])[5] as string[]);
    if (findContentType(headerPairs(rawHeaders))?.toLowerCase() !== "message/rfc822") {
      throw new TailhookError("bad_request", "this event is not an email (its content type is not message/rfc822)");
    }
    return parsedEmailView(message.data);
  });

  app.get("/api/inboxes/:id/events/:seq/body", async (request, reply) => {
    const message = await readEvent(request);
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
