/* Consumers (named server-side cursors on an inbox's stream) as the API takes and gives them. */
import Type from "typebox";
import { Iso, IsoOrNull } from "./common.js";

export const ConsumerParams = Type.Object({
  id: Type.String({ description: "the inbox id" }),
  name: Type.String({ pattern: "^[A-Za-z0-9._-]{1,100}$", description: "1 to 100 letters, digits, '.', '_' or '-'" }),
});

export const ConsumerCreate = Type.Object({
  from: Type.Optional(Type.String({ description: 'where it starts: "start" or "-1" (default), "now", or an offset' })),
});

export const ConsumerAck = Type.Object({
  offset: Type.String({ description: "an offset the server issued: everything up to it is done" }),
});

export const ConsumerView = Type.Object({
  name: Type.String(),
  committedOffset: Type.String(),
  committedSeq: Type.Integer(),
  lag: Type.Object({
    events: Type.Integer({ description: "retained events after the committed offset" }),
    lostEvents: Type.Integer({ description: "events it never committed that retention removed" }),
    seconds: Type.Integer({ description: "the age of its oldest unacked event, 0 when caught up" }),
    oldestUnackedAt: IsoOrNull,
    oldestUnackedAgeSeconds: Type.Union([Type.Integer(), Type.Null()]),
    behindHorizon: Type.Boolean({
      description:
        "its committed offset is before horizonOffset: a delta read from it answers 410; it re-syncs from the key frame (offset=snapshot) or the earliest event",
    }),
    horizonOffset: Type.String({
      description: "the earliest offset deltas can be read after: the later of the compaction horizon and the earliest retained event",
    }),
  }),
  createdAt: Iso,
  lastAckAt: IsoOrNull,
  lastSeenAt: IsoOrNull,
});

export const ConsumerList = Type.Object({ consumers: Type.Array(ConsumerView) });
