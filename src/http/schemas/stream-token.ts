/* Stream tokens (our extension to Durable Streams) as the admin API takes and gives them. */
import Type from "typebox";
import { Iso, IsoOrNull } from "./common.js";

export const MAX_STREAM_TOKEN_TTL_SECONDS = 10 * 365 * 24 * 3600;

export const StreamTokenInput = Type.Object(
  {
    prefix: Type.String({ minLength: 1, description: "a stream name or a path of streams (not an inbox stream)" }),
    access: Type.Optional(Type.Enum(["read", "write"], { default: "read" })),
    expiresInSeconds: Type.Optional(
      Type.Union([
        Type.Integer({
          minimum: 1,
          maximum: MAX_STREAM_TOKEN_TTL_SECONDS,
          description: `an integer from 1 to ${MAX_STREAM_TOKEN_TTL_SECONDS}`,
        }),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
);

const grantFields = {
  id: Type.String(),
  prefix: Type.String(),
  access: Type.Union([Type.Literal("read"), Type.Literal("write")]),
  createdAt: Iso,
  expiresAt: IsoOrNull,
};

export const StreamTokenView = Type.Object(grantFields);
export const CreatedStreamToken = Type.Object({ ...grantFields, token: Type.String({ description: "shown only here" }) });
export const StreamTokenList = Type.Object({ tokens: Type.Array(StreamTokenView) });
export const StreamTokenParams = Type.Object({ id: Type.String() });
