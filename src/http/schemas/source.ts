/*
 * Reconciliation sources as the admin API takes and gives them. A definition's fields
 * depend on its kind and are checked by sources/definitions.ts (unknown ones refused);
 * the view is complete: credentials only ever as "set" or header names.
 */
import Type from "typebox";
import { Iso, IsoOrNull } from "./common.js";

export const SourceParams = Type.Object({ id: Type.String({ description: "the inbox id" }), sourceId: Type.String() });

export const SourceInput = Type.Object(
  { kind: Type.Enum(["github", "stripe", "poll", "imap"]) },
  { additionalProperties: true, description: "the kind's own fields: docs/trust.md#reconciliation-with-the-sender-apiinboxesidsources" },
);

const Set = Type.Literal("set");
const NullableString = Type.Union([Type.String(), Type.Null()]);

const SourceStatus = Type.Object({
  lastRun: Type.Union([
    Type.Object({
      startedAt: IsoOrNull,
      finishedAt: IsoOrNull,
      listed: Type.Integer(),
      missing: Type.Integer(),
      appended: Type.Integer(),
      complete: Type.Boolean(),
      skipped: Type.Optional(Type.Integer()),
      error: NullableString,
    }),
    Type.Null(),
  ]),
  cursor: Type.Optional(Type.Object({ after: NullableString, before: NullableString }, { description: "Stripe only" })),
  error: NullableString,
  failures: Type.Integer(),
  recentErrors: Type.Array(Type.Object({ at: IsoOrNull, error: Type.String() })),
  nextRunAt: IsoOrNull,
  rateLimitedUntil: IsoOrNull,
});

export const SourceView = Type.Object({
  id: Type.String(),
  inboxId: Type.String(),
  kind: Type.String(),
  // github
  repository: Type.Optional(Type.String()),
  organization: Type.Optional(Type.String()),
  app: Type.Optional(Type.Boolean()),
  appId: Type.Optional(Type.String()),
  hookId: Type.Optional(Type.Integer()),
  mode: Type.Optional(Type.String()),
  // poll
  url: Type.Optional(Type.String()),
  // imap
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer()),
  security: Type.Optional(Type.String()),
  user: Type.Optional(Type.String()),
  mailbox: Type.Optional(Type.String()),
  ca: Type.Optional(Type.Union([Set, Type.Null()])),
  withoutMessageId: Type.Optional(Type.String()),
  credentials: Type.Object({
    token: Type.Optional(Set),
    privateKey: Type.Optional(Set),
    secretKey: Type.Optional(Set),
    headers: Type.Optional(Type.Array(Type.String(), { description: "the header names only" })),
    password: Type.Optional(Set),
  }),
  intervalSeconds: Type.Integer(),
  timeoutMs: Type.Integer(),
  createdAt: Iso,
  status: SourceStatus,
});

export const SourceList = Type.Object({ sources: Type.Array(SourceView) });
export const RunRequested = Type.Object({ requested: Type.Literal(true) });
