/* The package's public API: the typed client and the event types. */
export { TailhookClient } from "./client/client.js";
export type { ClientOptions, CreatedInbox, InboxInfo, LossNotice, TailedEvent, TailOptions } from "./client/client.js";
export { TailhookGoneError, TailhookHttpError } from "./client/errors.js";
export type { EventEnvelope, InboxSettings } from "./core/types.js";
export { decodeEnvelopeBody } from "./core/capture.js";
