/*
 * Broken contracts throw one error class; its code comes from a closed list that
 * the HTTP layer maps to statuses in one table (http/errors.ts). Expected outcomes
 * (an unknown inbox, a duplicate) are returned as values instead.
 */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "not_found"
  | "gone"
  | "conflict"
  | "payload_too_large"
  | "method_not_allowed"
  | "not_implemented"
  | "store_unavailable"
  | "shutting_down";

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
