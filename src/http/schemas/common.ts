/*
 * Schemas every JSON route shares: the error reply, the token in the query string,
 * the inbox id in the path. TypeBox values are plain JSON Schema, so the same objects
 * validate requests (ajv), serialize replies and feed /openapi.json.
 */
import type { FastifyRequest } from "fastify";
import Type, { type TSchema } from "typebox";

export const Iso = Type.String({ format: "date-time" });
export const IsoOrNull = Type.Union([Iso, Type.Null()]);

/** `?token=` is for clients that cannot set headers (EventSource); other query keys are ignored. */
export const TokenQuery = Type.Object({
  token: Type.Optional(Type.String({ description: "an admin, inbox or stream token (where no Authorization header can be sent)" })),
});

export const InboxParams = Type.Object({ id: Type.String({ description: "the inbox id" }) });

/** Any validated request naming an inbox, whatever else its schema holds. */
export type InboxRequest<Params extends { id: string } = { id: string }> = Pick<FastifyRequest, "headers" | "query"> & { params: Params };

/** `{ "error": { "code", "message", ...details } }`: details (e.g. earliestOffset) are open. */
export const ErrorReply = Type.Object(
  {
    error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true }),
  },
  { description: "an error (docs/http-api.md): code, message and sometimes details such as earliestOffset" },
);

/** The error replies a route may give, all of one shape; serialized with extras kept. */
export const ErrorReplies = { "4xx": ErrorReply, "5xx": ErrorReply } as const;

/** Bearer auth for the OpenAPI document: admin, inbox or stream token, by route. */
export const bearerAuth = [{ bearer: [] }];

/** A reply without a body (204): type null is how @fastify/swagger leaves out the content. */
export const NoContent = { type: "null", description: "no content" } as const;

export type { TSchema };
