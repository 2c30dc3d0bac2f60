/*
 * The sources API, admin token only: /api/inboxes/:id/sources (create, list) and
 * /api/inboxes/:id/sources/:sourceId (get, delete, POST …/run to run it now).
 * Replies show a source's status but never its credentials.
 */
import type { FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { TailhookError } from "../core/errors.js";
import type { StoredInbox } from "../core/types.js";
import { requestToken } from "../http/auth.js";
import type { HttpContext } from "../http/context.js";
import { bearerAuth, ErrorReplies, InboxParams, NoContent, TokenQuery, type InboxRequest } from "../http/schemas/common.js";
import { RunRequested, SourceInput, SourceList, SourceParams, SourceView } from "../http/schemas/source.js";
import { MAX_SOURCES_PER_INBOX, parseSourceDefinition, sourceView } from "./definitions.js";
import type { SourceRecords } from "./records.js";
import type { SourceDefinition } from "./types.js";

const TAGS = ["sources"];
const oneSource = <Extra extends object>(summary: string, extra: Extra) => ({
  schema: { tags: TAGS, summary, security: bearerAuth, params: SourceParams, querystring: TokenQuery, ...extra },
});
const allSources = <Extra extends object>(summary: string, extra: Extra) => ({
  schema: { tags: TAGS, summary, security: bearerAuth, params: InboxParams, querystring: TokenQuery, ...extra },
});

export function registerSourceRoutes(fastify: FastifyInstance, ctx: HttpContext, records: SourceRecords): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  async function adminInbox(request: InboxRequest): Promise<StoredInbox> {
    ctx.auth.requireAdmin(requestToken(request));
    const inbox = await ctx.store.getInbox(request.params.id);
    if (!inbox) throw new TailhookError("not_found", "no such inbox");
    return inbox;
  }

  async function sourceOf(request: InboxRequest<{ id: string; sourceId: string }>): Promise<SourceDefinition> {
    const inbox = await adminInbox(request);
    const { sourceId } = request.params;
    const source = (await records.definitionsOf(inbox.id)).find((candidate) => candidate.id === sourceId);
    if (!source) throw new TailhookError("not_found", "no such source");
    return source;
  }

  app.post(
    "/api/inboxes/:id/sources",
    allSources("Add a reconciliation source (admin)", { body: SourceInput, response: { 201: SourceView, ...ErrorReplies } }),
    async (request, reply) => {
      const inbox = await adminInbox(request);
      const source = parseSourceDefinition(request.body, inbox);
      if ((await records.definitionsOf(inbox.id)).length >= MAX_SOURCES_PER_INBOX) {
        throw new TailhookError("bad_request", `an inbox has at most ${MAX_SOURCES_PER_INBOX} sources`);
      }
      await records.putDefinition(source);
      return reply.code(201).send(sourceView(source, undefined));
    },
  );

  app.get(
    "/api/inboxes/:id/sources",
    allSources("An inbox's sources with their status (admin)", { response: { 200: SourceList, ...ErrorReplies } }),
    async (request) => {
      const inbox = await adminInbox(request);
      const [sources, states] = await Promise.all([records.definitionsOf(inbox.id), records.states()]);
      return { sources: sources.map((source) => sourceView(source, states.get(source.id))) };
    },
  );

  app.get(
    "/api/inboxes/:id/sources/:sourceId",
    oneSource("One source (admin)", { response: { 200: SourceView, ...ErrorReplies } }),
    async (request) => {
      const source = await sourceOf(request);
      return sourceView(source, (await records.states()).get(source.id));
    },
  );

  app.post(
    "/api/inboxes/:id/sources/:sourceId/run",
    oneSource("Run a source now (admin; the leader runs it within half a second)", { response: { 202: RunRequested, ...ErrorReplies } }),
    async (request, reply) => {
      const source = await sourceOf(request);
      await records.requestRun(source.id);
      return reply.code(202).send({ requested: true as const });
    },
  );

  app.delete(
    "/api/inboxes/:id/sources/:sourceId",
    oneSource("Delete a source (admin)", { response: { 204: NoContent, ...ErrorReplies } }),
    async (request, reply) => {
      const source = await sourceOf(request);
      await records.remove(source.id);
      return reply.code(204).send(null);
    },
  );
}
