/*
 * Stream tokens (a tailhook extension to Durable Streams): the admin creates, lists and
 * revokes tokens that may read, or read and write, the general streams under a path
 * prefix. The token itself is shown once, at creation.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import type { HttpContext } from "../context.js";
import { checkStreamName, isInboxStreamName, requestToken } from "../protocol/stream-access.js";
import { parseNewGrant, type StreamGrant, type StreamGrants } from "../stream-grants.js";

function view({ tokenHash: _hash, ...grant }: StreamGrant) {
  return { ...grant, createdAt: new Date(grant.createdAt).toISOString(), expiresAt: grant.expiresAt === null ? null : new Date(grant.expiresAt).toISOString() };
}

export function registerStreamTokenRoutes(app: FastifyInstance, ctx: HttpContext): void {
  /** Only the admin manages tokens, also under --open (which opens streams, not this). */
  function adminGrants(request: FastifyRequest): StreamGrants {
    ctx.auth.requireAdmin(requestToken(request));
    if (!ctx.grants) throw new TailhookError("not_implemented", "this storage backend does not support general streams");
    return ctx.grants;
  }

  app.post("/api/stream-tokens", async (request, reply) => {
    const grants = adminGrants(request);
    const wanted = parseNewGrant(request.body);
    checkStreamName(wanted.prefix);
    if (isInboxStreamName(`${wanted.prefix}/`)) throw new TailhookError("bad_request", "inbox streams are read with the inbox's own token");
    const { token, grant } = await grants.create(wanted);
    return reply.code(201).send({ ...view(grant), token });
  });
  app.get("/api/stream-tokens", async (request) => ({ tokens: (await adminGrants(request).list()).map(view) }));
  app.delete("/api/stream-tokens/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await adminGrants(request).revoke(id))) throw new TailhookError("not_found", "no such stream token");
    return reply.code(204).send();
  });
}
