/*
 * Refusals of subscription requests: values with the protocol's own codes
 * (SubscriptionErrorCode, in the one error table of core/errors.ts). The routes throw
 * them as TailhookErrors, and the server's error handler answers them as every error:
 * { "error": { "code", "message", ...details } } with the table's status.
 */
import type { SubscriptionErrorCode } from "../core/errors.js";

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
