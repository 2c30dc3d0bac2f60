/*
 * The sources API, admin token only: /api/inboxes/:id/sources (create, list) and
 * /api/inboxes/:id/sources/:sourceId (get, delete, POST …/run to run it now).
 * Replies show a source's status but never its credentials.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TailhookError } from "../core/errors.js";
import type { StoredInbox } from "../core/types.js";
import { presentedToken } from "../http/auth.js";
import type { HttpContext } from "../http/context.js";
import { MAX_SOURCES_PER_INBOX, parseSourceDefinition, sourceView } from "./definitions.js";
import type { SourceRecords } from "./records.js";
import type { SourceDefinition } from "./types.js";

export function registerSourceRoutes(app: FastifyInstance, ctx: HttpContext, records: SourceRecords): void {
  async function adminInbox(request: FastifyRequest): Promise<StoredInbox> {
    ctx.auth.requireAdmin(presentedToken(request.headers, request.query as Record<string, unknown>));
    const { id } = request.params as { id: string };
    const inbox = await ctx.store.getInbox(id);
    if (!inbox) throw new TailhookError("not_found", "no such inbox");
    return inbox;
  }

  async function sourceOf(request: FastifyRequest): Promise<SourceDefinition> {
    const inbox = await adminInbox(request);
    const { sourceId } = request.params as { sourceId: string };
    const source = (await records.definitionsOf(inbox.id)).find((candidate) => candidate.id === sourceId);
    if (!source) throw new TailhookError("not_found", "no such source");
    return source;
  }

  app.post("/api/inboxes/:id/sources", async (request, reply) => {
    const inbox = await adminInbox(request);
    const source = parseSourceDefinition(request.body ?? {}, inbox);
    if ((await records.definitionsOf(inbox.id)).length >= MAX_SOURCES_PER_INBOX) {
      throw new TailhookError("bad_request", `an inbox has at most ${MAX_SOURCES_PER_INBOX} sources`);
    }
    await records.putDefinition(source);
    return reply.code(201).send(sourceView(source, undefined));
  });

  app.get("/api/inboxes/:id/sources", async (request) => {
    const inbox = await adminInbox(request);
    const [sources, states] = await Promise.all([records.definitionsOf(inbox.id), records.states()]);
    return { sources: sources.map((source) => sourceView(source, states.get(source.id))) };
  });

  app.get("/api/inboxes/:id/sources/:sourceId", async (request) => {
    const source = await sourceOf(request);
    return sourceView(source, (await records.states()).get(source.id));
  });

  app.post("/api/inboxes/:id/sources/:sourceId/run", async (request, reply) => {
    const source = await sourceOf(request);
    await records.requestRun(source.id);
    return reply.code(202).send({ requested: true });
  });

  app.delete("/api/inboxes/:id/sources/:sourceId", async (request, reply) => {
    const source = await sourceOf(request);
    await records.remove(source.id);
    return reply.code(204).send();
  });
}
