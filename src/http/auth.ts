/*
 * Who may do what. The admin token may do everything; an inbox's token may read that
 * inbox. Tokens arrive as "Authorization: Bearer" or, for EventSource which cannot
 * set headers, as ?token=. Both are compared as hashes in constant time.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { FastifyRequest } from "fastify";
import { TailhookError } from "../core/errors.js";
import { hashToken, tokenMatches } from "../core/ids.js";
import type { StoredInbox } from "../core/types.js";

export type Access = "admin" | "inbox";

export function presentedToken(headers: IncomingHttpHeaders, query: { token?: unknown }): string | undefined {
  const header = headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1];
  }
  return typeof query.token === "string" && query.token !== "" ? query.token : undefined;
}

/** The token a Fastify request presents (header first, then ?token=). */
export function requestToken(request: Pick<FastifyRequest, "headers" | "query">): string | undefined {
  const { query } = request;
  return presentedToken(request.headers, typeof query === "object" && query !== null ? query : {});
}

export class Authorizer {
  private readonly adminHash: Buffer;

  constructor(adminToken: string) {
    this.adminHash = hashToken(adminToken);
  }

  isAdmin(token: string | undefined): boolean {
    return token !== undefined && tokenMatches(token, this.adminHash);
  }

  requireAdmin(token: string | undefined): void {
    if (!this.isAdmin(token)) throw new TailhookError("unauthorized", "the admin token is required");
  }

  /**
   * Admin or the inbox's own token. A missing inbox and a wrong token look the same
   * to a non-admin caller, so tokens cannot be used to probe for inbox ids.
   */
  requireInboxReader(token: string | undefined, inbox: StoredInbox | undefined): Access {
    if (this.isAdmin(token)) {
      if (!inbox) throw new TailhookError("not_found", "no such inbox");
      return "admin";
    }
    if (token !== undefined && inbox && tokenMatches(token, inbox.tokenHash)) return "inbox";
    throw new TailhookError("unauthorized", "a valid token for this inbox is required");
  }
}
