/*
 * The protocol's error codes for subscription requests, and the one table from code to
 * HTTP status. Refusals are values; the routes turn them into
 * { "error": { "code", "message", ...details } } replies.
 */

export type SubscriptionErrorCode =
  | "INVALID_REQUEST"
  | "WEBHOOK_URL_REJECTED"
  | "SUBSCRIPTION_NOT_FOUND"
  | "SUBSCRIPTION_ALREADY_EXISTS"
  | "TOKEN_INVALID"
  | "FENCED"
  | "ALREADY_CLAIMED"
  | "NO_PENDING_WORK"
  | "INVALID_OFFSET";

export const STATUS_BY_CODE: Record<SubscriptionErrorCode, number> = {
  INVALID_REQUEST: 400,
  WEBHOOK_URL_REJECTED: 400,
  SUBSCRIPTION_NOT_FOUND: 404,
  SUBSCRIPTION_ALREADY_EXISTS: 409,
  TOKEN_INVALID: 401,
  FENCED: 409,
  ALREADY_CLAIMED: 409,
  NO_PENDING_WORK: 409,
  INVALID_OFFSET: 409,
};

export interface Refusal {
  ok: false;
  code: SubscriptionErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export type Outcome<T> = { ok: true; value: T } | Refusal;

export function refuse(code: SubscriptionErrorCode, message: string, details?: Record<string, unknown>): Refusal {
  return details === undefined ? { ok: false, code, message } : { ok: false, code, message, details };
}
