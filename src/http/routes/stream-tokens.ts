/*
 * Stream tokens (a tailhook extension to Durable Streams): the admin creates, lists and
 * revokes tokens that may read, or read and write, the general streams under a path
 * prefix. The token itself is shown once, at creation.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { TailhookError } from "../../core/errors.js";
import type { HttpContext } from "../context.js";
import { requestToken } from "../auth.js";
import { checkStreamName, isInboxStreamName } from "../protocol/stream-access.js";
import { newGrantOf, type StreamGrant, type StreamGrants } from "../stream-grants.js";
import { bearerAuth, ErrorReplies, NoContent, TokenQuery } from "../schemas/common.js";
import { CreatedStreamToken, StreamTokenInput, StreamTokenList, StreamTokenParams } from "../schemas/stream-token.js";

function view({ tokenHash: _hash, ...grant }: StreamGrant) {
  return {
    ...grant,
    createdAt: new Date(grant.createdAt).toISOString(),
    expiresAt: grant.expiresAt === null ? null : new Date(grant.expiresAt).toISOString(),
  };
}

const TAGS = ["stream tokens"];

export function registerStreamTokenRoutes(fastify: FastifyInstance, ctx: HttpContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  /** Only the admin manages tokens, also under --open (which opens streams, not this). */
  function adminGrants(request: Pick<FastifyRequest, "headers" | "query">): StreamGrants {
    ctx.auth.requireAdmin(requestToken(request));
    if (!ctx.grants) throw new TailhookError("not_implemented", "this storage backend does not support general streams");
    return ctx.grants;
  }

  app.post(
    "/api/stream-tokens",
    {
      schema: {
        tags: TAGS,
        summary: "Create a token for the general streams under a prefix (admin)",
        security: bearerAuth,
        querystring: TokenQuery,
        body: StreamTokenInput,
        response: { 201: CreatedStreamToken, ...ErrorReplies },
      },
    },
    async (request, reply) => {
      const grants = adminGrants(request);
      const wanted = newGrantOf(request.body);
      checkStreamName(wanted.prefix);
      if (isInboxStreamName(`${wanted.prefix}/`))
        throw new TailhookError("bad_request", "inbox streams are read with the inbox's own token");
      const { token, grant } = await grants.create(wanted);
      return reply.code(201).send({ ...view(grant), token });
    },
  );
  app.get(
    "/api/stream-tokens",
    {
      schema: {
        tags: TAGS,
        summary: "List the stream tokens (admin; never the tokens themselves)",
        security: bearerAuth,
        querystring: TokenQuery,
        response: { 200: StreamTokenList, ...ErrorReplies },
      },
    },
    async (request) => ({ tokens: (await adminGrants(request).list()).map(view) }),
  );
  app.delete(
    "/api/stream-tokens/:id",
    {
      schema: {
        tags: TAGS,
        summary: "Revoke a stream token (admin)",
        security: bearerAuth,
        params: StreamTokenParams,
        querystring: TokenQuery,
        response: { 204: NoContent, ...ErrorReplies },
      },
    },
    async (request, reply) => {
      if (!(await adminGrants(request).revoke(request.params.id))) throw new TailhookError("not_found", "no such stream token");
      return reply.code(204).send(null);
    },
  );
}
