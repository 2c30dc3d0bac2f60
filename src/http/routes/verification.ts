/*
 * GET /api/inboxes/:id/verification (admin): the inbox's verify settings (secrets as a
 * count) and the requests this process refused for a failed signature: how many, and
 * the last few, newest first.
 */
import type { FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { TailhookError } from "../../core/errors.js";
import type { RefusalLog } from "../../core/verify/refusals.js";
import { maskVerifySettings } from "../../core/verify/settings.js";
import { requestToken } from "../auth.js";
import type { HttpContext } from "../context.js";
import { bearerAuth, ErrorReplies, InboxParams, TokenQuery } from "../schemas/common.js";
import { VerificationView } from "../schemas/inbox.js";

export function registerVerificationRoutes(fastify: FastifyInstance, ctx: HttpContext, refusals: RefusalLog): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    "/api/inboxes/:id/verification",
    {
      schema: {
        tags: ["inboxes"],
        summary: "An inbox's verify settings and the requests this process refused (admin)",
        security: bearerAuth,
        params: InboxParams,
        querystring: TokenQuery,
        response: { 200: VerificationView, ...ErrorReplies },
      },
    },
    async (request) => {
      ctx.auth.requireAdmin(requestToken(request));
      const inbox = await ctx.store.getInbox(request.params.id);
      if (!inbox) throw new TailhookError("not_found", "no such inbox");
      const verify = inbox.settings.verify;
      return { verify: verify ? maskVerifySettings(verify) : null, ...refusals.view(inbox.id) };
    },
  );
}
