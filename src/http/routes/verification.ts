/*
 * GET /api/inboxes/:id/verification (admin): the inbox's verify settings (secrets as a
 * count) and the requests this process refused for a failed signature: how many, and
 * the last few, newest first.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import type { RefusalLog } from "../../core/verify/refusals.js";
import { maskVerifySettings } from "../../core/verify/settings.js";
import { presentedToken } from "../auth.js";
import type { HttpContext } from "../context.js";

export function registerVerificationRoutes(app: FastifyInstance, ctx: HttpContext, refusals: RefusalLog): void {
  app.get("/api/inboxes/:id/verification", async (request: FastifyRequest) => {
    ctx.auth.requireAdmin(presentedToken(request.headers, request.query as Record<string, unknown>));
    const { id } = request.params as { id: string };
    const inbox = await ctx.store.getInbox(id);
    if (!inbox) throw new TailhookError("not_found", "no such inbox");
    const verify = inbox.settings.verify;
    return { verify: verify ? maskVerifySettings(verify) : null, ...refusals.view(inbox.id) };
  });
}
