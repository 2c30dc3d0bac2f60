/*
 * Inboxes and their events as the management API takes and gives them. The request
 * schemas check the shape; the rules a schema cannot state (header bytes Node can
 * send, secret formats, defaults and normalizing) stay with the parsers in core/.
 */
import Type from "typebox";
import { DEDUPE_PRESETS, MAX_DEDUPE_WINDOW_SECONDS } from "../../core/dedupe.js";
import { HMAC_ALGORITHMS, VERIFY_SCHEMES } from "../../core/verify/settings.js";
import { Iso, IsoOrNull, InboxParams, TokenQuery } from "./common.js";

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));
const positive = (description: string, maximum?: number) =>
  Type.Integer({ minimum: 1, ...(maximum !== undefined ? { maximum } : {}), description });

const PRESETS = Object.keys(DEDUPE_PRESETS);
const MAX_BODY_LIMIT = 256 * 1024 * 1024;
const MAX_TOLERANCE_SECONDS = 366 * 24 * 3600;

const ResponseSettingsInput = Type.Object(
  {
    status: Type.Optional(Type.Integer({ minimum: 200, maximum: 599, description: "an integer from 200 to 599" })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    body: Type.Optional(Type.String()),
  },
  { additionalProperties: false, description: "the reply webhook senders get once their event is stored" },
);

const RetentionSettings = Type.Object(
  {
    maxEvents: Type.Optional(positive("an integer from 1")),
    maxAgeSeconds: Type.Optional(positive("an integer from 1")),
    compact: Type.Optional(Type.Boolean({ description: "keep only the latest event per entity (needs keyFrame)" })),
    compactLag: Type.Optional(
      Type.Integer({ minimum: 0, description: "with compact: how many of the newest events compaction never touches (default 1000)" }),
    ),
  },
  { additionalProperties: false },
);

/** docs/key-frames.md, "Inbox key frames": where an event's entity id and type live. */
const JsonPointer = Type.String({ description: 'a JSON pointer (RFC 6901) into the body, e.g. "/data/object/id"' });
const KeyPointer = Type.Union([
  JsonPointer,
  Type.Object(
    {
      pointer: JsonPointer,
      type: Type.Optional(Type.String({ minLength: 1, description: "a non-empty string: the entity type it means" })),
    },
    { additionalProperties: false },
  ),
]);
const KeyFrameSetting = Type.Object(
  {
    preset: Type.Optional(Type.Enum(["stripe", "github"])),
    key: Type.Optional(
      Type.Array(KeyPointer, { minItems: 1, maxItems: 16, description: "a list of 1 to 16 JSON pointers (the first that exists wins)" }),
    ),
    header: Type.Optional(Type.String({ description: "a header name: its value is the entity id" })),
    type: Type.Optional(
      Type.Union([JsonPointer, Type.Object({ value: Type.String({ minLength: 1 }) }, { additionalProperties: false })], {
        description: 'a JSON pointer to the entity type, or {"value": "<fixed type>"}',
      }),
    ),
  },
  { additionalProperties: false, description: "exactly one of preset, key or header (key and header may have a type)" },
);

const DedupeObject = Type.Object(
  {
    preset: Type.Optional(Type.Enum(PRESETS)),
    header: Type.Optional(Type.String()),
    jsonPointer: Type.Optional(Type.String()),
    emailHeader: Type.Optional(Type.String()),
    windowSeconds: Type.Optional(positive(`an integer from 1 to ${MAX_DEDUPE_WINDOW_SECONDS}`, MAX_DEDUPE_WINDOW_SECONDS)),
  },
  { additionalProperties: false, description: "exactly one of preset, header, jsonPointer or emailHeader" },
);

const HmacInput = Type.Object(
  {
    header: Type.String(),
    algorithm: Type.Optional(Type.Enum([...HMAC_ALGORITHMS])),
    encoding: Type.Optional(Type.Enum(["hex", "base64"])),
    prefix: Type.Optional(Type.String({ maxLength: 100, description: "a string of at most 100 characters" })),
    signedContent: Type.Optional(Type.String({ maxLength: 1000, description: "a template with {body} once, e.g. {timestamp}.{body}" })),
    timestampHeader: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const VerifyInput = Type.Object(
  {
    scheme: Type.Enum([...VERIFY_SCHEMES]),
    secrets: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 1024, description: "a string of 1 to 1024 characters" }), {
        minItems: 1,
        maxItems: 10,
        description: "an array of 1 to 10 strings (write-only; a PATCH without it keeps the current ones)",
      }),
    ),
    mode: Type.Optional(Type.Enum(["annotate", "enforce"])),
    toleranceSeconds: Type.Optional(positive(`an integer from 1 to ${MAX_TOLERANCE_SECONDS}`, MAX_TOLERANCE_SECONDS)),
    hmac: Type.Optional(HmacInput),
  },
  { additionalProperties: false },
);

/** What POST and PATCH take; in a PATCH, null removes a key. */
export const InboxSettingsInput = Type.Object(
  {
    maxBodyBytes: nullable(positive(`an integer from 1 to ${MAX_BODY_LIMIT}`, MAX_BODY_LIMIT)),
    response: nullable(ResponseSettingsInput),
    retention: nullable(RetentionSettings),
    dedupe: nullable(Type.Union([Type.Enum(PRESETS, { description: "a preset name" }), DedupeObject])),
    verify: nullable(VerifyInput),
    expectEvery: nullable(positive(`an integer from 1 to ${366 * 24 * 3600}`, 366 * 24 * 3600)),
    keyFrame: nullable(KeyFrameSetting),
  },
  { additionalProperties: false, description: "docs/http-api.md: settings" },
);

export const InboxInput = Type.Object(
  {
    name: nullable(Type.String({ maxLength: 200, description: "a string of at most 200 printable characters" })),
    settings: nullable(InboxSettingsInput),
  },
  { description: "other keys are ignored" },
);

const VerifyView = Type.Object({
  scheme: Type.String(),
  secrets: Type.Integer({ description: "how many secrets are set (they are never shown)" }),
  mode: Type.String(),
  toleranceSeconds: Type.Integer(),
  hmac: Type.Optional(
    Type.Object({
      header: Type.String(),
      algorithm: Type.String(),
      encoding: Type.String(),
      prefix: Type.String(),
      signedContent: Type.String(),
      timestampHeader: Type.Optional(Type.String()),
    }),
  ),
});

/** Settings as stored and shown: defaults filled in, secrets as a count. */
const InboxSettingsView = Type.Object({
  maxBodyBytes: Type.Optional(Type.Integer()),
  response: Type.Optional(Type.Object({ status: Type.Integer(), headers: Type.Record(Type.String(), Type.String()), body: Type.String() })),
  retention: Type.Optional(
    Type.Object({
      maxEvents: Type.Optional(Type.Integer()),
      maxAgeSeconds: Type.Optional(Type.Integer()),
      compact: Type.Optional(Type.Boolean()),
      compactLag: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
  ),
  keyFrame: Type.Optional(KeyFrameSetting),
  dedupe: Type.Optional(
    Type.Object({
      preset: Type.Optional(Type.String()),
      header: Type.Optional(Type.String()),
      jsonPointer: Type.Optional(Type.String()),
      emailHeader: Type.Optional(Type.String()),
      windowSeconds: Type.Integer(),
    }),
  ),
  verify: Type.Optional(VerifyView),
  expectEvery: Type.Optional(Type.Integer({ description: "seconds within which an event is expected (the silence alarm)" })),
});

/** [name, value]; not a tuple schema, whose draft-07 form OpenAPI 3.1 does not take. */
const HeaderPairs = Type.Array(Type.Array(Type.String(), { minItems: 2, maxItems: 2 }), {
  description: "the raw headers in order, as [name, value] pairs",
});

const inboxFields = {
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  ingestUrl: Type.String({ description: "where senders deliver: <public URL>/h/<id>" }),
  streamUrl: Type.String({ description: "the inbox's Durable Stream" }),
  settings: InboxSettingsView,
  createdAt: Iso,
  lastSeq: Type.Integer({ description: "the seq of the newest event, 0 when none" }),
  lastEventAt: IsoOrNull,
  silent: Type.Boolean({ description: "settings.expectEvery passed without an event" }),
  silentSince: IsoOrNull,
};

export const InboxView = Type.Object(inboxFields);

/** Only the creation reply carries the token (and the smee URL, which contains it). */
export const CreatedInbox = Type.Object({
  ...inboxFields,
  token: Type.String({ description: "the inbox's read token, shown only here" }),
  smeeUrl: Type.String({ description: "the inbox as a smee.io channel (contains the token)" }),
});

export const InboxList = Type.Object({ inboxes: Type.Array(InboxView) });

export const EventParams = Type.Object({
  id: InboxParams.properties.id,
  seq: Type.String({ pattern: "^0*[1-9][0-9]{0,14}$", description: "an event number (1, 2, 3…)" }),
});

const VerificationVerdict = Type.Object({ scheme: Type.String(), ok: Type.Boolean(), reason: Type.Optional(Type.String()) });

const EmailEnvelope = Type.Object({
  mailFrom: Type.String(),
  rcptTo: Type.String(),
  helo: Type.Optional(Type.String()),
  remoteAddress: Type.Optional(Type.String()),
  tls: Type.Optional(Type.Boolean()),
  authUser: Type.Optional(Type.String()),
  imap: Type.Optional(
    Type.Object({
      mailbox: Type.String(),
      uid: Type.Integer(),
      uidValidity: Type.String(),
      internalDate: Type.Optional(Type.String()),
    }),
  ),
});

/** docs/design.md#the-event-envelope; sent pre-serialized, so this documents and tests it. */
export const EventEnvelope = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  receivedAt: Iso,
  method: Type.String(),
  path: Type.String({ description: 'the raw sub-path below /h/<id>, "" when none' }),
  query: Type.String({ description: "the raw query string without ?" }),
  headers: HeaderPairs,
  contentType: Type.Union([Type.String(), Type.Null()]),
  size: Type.Integer(),
  body: Type.String(),
  bodyEncoding: Type.Union([Type.Literal("utf8"), Type.Literal("base64")]),
  remoteAddr: Type.String(),
  verification: Type.Optional(VerificationVerdict),
  origin: Type.Optional(Type.Union([Type.Literal("webhook"), Type.Literal("reconciled"), Type.Literal("poll")])),
  source: Type.Optional(Type.String()),
  email: Type.Optional(EmailEnvelope),
  deliveries: Type.Optional(Type.Integer({ description: "with settings.dedupe: how many times the sender delivered it" })),
});

const MailAddress = Type.Object({ name: Type.String(), address: Type.Union([Type.String(), Type.Null()]) });
const NullableString = Type.Union([Type.String(), Type.Null()]);

export const ParsedEmail = Type.Object({
  subject: NullableString,
  from: Type.Array(MailAddress),
  to: Type.Array(MailAddress),
  cc: Type.Array(MailAddress),
  replyTo: Type.Array(MailAddress),
  date: Type.Union([Iso, Type.Null()]),
  messageId: NullableString,
  inReplyTo: NullableString,
  text: NullableString,
  html: NullableString,
  attachments: Type.Array(
    Type.Object({
      filename: NullableString,
      contentType: Type.String(),
      size: Type.Integer(),
      contentId: NullableString,
      disposition: NullableString,
    }),
  ),
});

const RefusedRequest = Type.Object({
  at: Iso,
  reason: Type.String(),
  method: Type.String(),
  path: Type.String(),
  size: Type.Integer(),
  headers: HeaderPairs,
  body: Type.Optional(Type.String()),
  bodyEncoding: Type.Optional(Type.Union([Type.Literal("utf8"), Type.Literal("base64")])),
});

export const VerificationView = Type.Object({
  verify: Type.Union([VerifyView, Type.Null()]),
  refused: Type.Integer(),
  recent: Type.Array(RefusedRequest),
});

export { IsoOrNull, TokenQuery, InboxParams };
