/*
 * Every way a request can fail, in one closed list, and the one table from each code to
 * its HTTP status and WebSocket close code. Broken contracts throw TailhookError with one
 * of these codes; expected outcomes (an unknown inbox, a duplicate) are values that the
 * routes turn into the same codes. The HTTP layer answers through this table only
 * (http/errors.ts); anything else thrown is `internal_error` (500), or
 * `store_unavailable` (503) when the store says the failure is its own (Store.isFailure).
 */

/** The Durable Streams subscription protocol's codes, spelled as the protocol spells them. */
export type SubscriptionErrorCode =
  | "INVALID_REQUEST"
  | "WEBHOOK_URL_REJECTED"
  | "SUBSCRIPTION_NOT_FOUND"
  | "SUBSCRIPTION_ALREADY_EXISTS"
  | "TOKEN_INVALID"
  | "FENCED"
  | "ALREADY_CLAIMED"
  | "NO_PENDING_WORK"
  | "INVALID_OFFSET"
  | "NOT_LEADER";

export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "stale_epoch"
  | "not_found"
  | "method_not_allowed"
  | "request_timeout"
  | "conflict"
  | "gone"
  | "payload_too_large"
  | "unsupported_media_type"
  | "header_fields_too_large"
  | "internal_error"
  | "not_implemented"
  | "store_unavailable"
  | "overloaded"
  | "shutting_down"
  | SubscriptionErrorCode;

export interface ErrorMeaning {
  /** The HTTP status of the reply (a 503 also carries Retry-After: 1). */
  status: number;
  /**
   * The close code when this ends a WebSocket: 4000 + the HTTP status for a refusal
   * (4404 deleted, 4410 gone), 1001 going away, 1011 a server-side failure.
   */
  close: number;
}

const SERVER_ERROR = 1011;

export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorMeaning>> = {
  bad_request: { status: 400, close: 4400 },
  unauthorized: { status: 401, close: 4401 },
  // Durable Streams: a producer whose epoch was superseded (protocol §5.2.1).
  stale_epoch: { status: 403, close: 4403 },
  not_found: { status: 404, close: 4404 },
  method_not_allowed: { status: 405, close: 4405 },
  request_timeout: { status: 408, close: 4408 },
  conflict: { status: 409, close: 4409 },
  gone: { status: 410, close: 4410 },
  payload_too_large: { status: 413, close: 4413 },
  unsupported_media_type: { status: 415, close: 4415 },
  header_fields_too_large: { status: 431, close: 4431 },
  internal_error: { status: 500, close: SERVER_ERROR },
  not_implemented: { status: 501, close: SERVER_ERROR },
  store_unavailable: { status: 503, close: SERVER_ERROR },
  // Over the connection limits (answered at accept, before any request).
  overloaded: { status: 503, close: SERVER_ERROR },
  shutting_down: { status: 503, close: 1001 },
  INVALID_REQUEST: { status: 400, close: 4400 },
  WEBHOOK_URL_REJECTED: { status: 400, close: 4400 },
  TOKEN_INVALID: { status: 401, close: 4401 },
  SUBSCRIPTION_NOT_FOUND: { status: 404, close: 4404 },
  SUBSCRIPTION_ALREADY_EXISTS: { status: 409, close: 4409 },
  FENCED: { status: 409, close: 4409 },
  ALREADY_CLAIMED: { status: 409, close: 4409 },
  NO_PENDING_WORK: { status: 409, close: 4409 },
  INVALID_OFFSET: { status: 409, close: 4409 },
  // Another process leads the subscriptions: retry (any process may lead next).
  NOT_LEADER: { status: 503, close: SERVER_ERROR },
};

export class TailhookError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "TailhookError";
  }
}
