/* The package's public API: the typed client and the event types. */
export { TailhookClient } from "./client/client.js";
export type {
  ClientOptions,
  ConsumerInfo,
  CreatedInbox,
  EventTailOptions,
  GonePolicy,
  InboxInfo,
  LossNotice,
  ResetCause,
  ResetMarker,
  SnapshotEndMarker,
  SnapshotEvent,
  StreamItem,
  StreamMessage,
  StreamSnapshotMessage,
  StreamTailOptions,
  TailedEvent,
  TailItem,
  TailOptions,
} from "./client/client.js";
export { TailhookGoneError, TailhookHttpError, TailhookProtocolError } from "./client/errors.js";
export type { EventEnvelope, InboxSettings } from "./core/types.js";
export { decodeEnvelopeBody } from "./core/capture.js";
export { forward } from "./forward/forwarder.js";
export type { DeliveryReport, ForwardOnGone, ForwardOptions, ForwardResult } from "./forward/forwarder.js";
export { replay } from "./forward/replay.js";
export type { On4xx } from "./forward/retry-policy.js";
