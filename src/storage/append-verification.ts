/*
 * The signature check an append makes when asked to (AppendEventOptions.verify), the
 * same for every store: a failure in enforce mode refuses the request before anything
 * is written; otherwise the verdict goes into the event, and a failure (annotate mode)
 * is reported back so the caller can count it.
 */
import type { VerificationVerdict } from "../core/types.js";
import { refusesRequest, verifyRequest, type VerifyInput, type VerifySettings } from "../core/verify/index.js";
import type { AppendEventResult } from "./store.js";

export type AppendCheck =
  { refused: true; result: AppendEventResult & { status: "refused" } } | { refused: false; verdict: VerificationVerdict };

export function checkAppend(settings: VerifySettings, request: VerifyInput): AppendCheck {
  const verdict = verifyRequest(settings, request);
  if (refusesRequest(settings, verdict)) return { refused: true, result: { status: "refused", reason: verdict.reason ?? "" } };
  return { refused: false, verdict };
}

/** The append's result, saying why the stored request failed its check, if it did. */
export function reportVerdict<R extends AppendEventResult>(result: R, verdict: VerificationVerdict): R {
  if (verdict.ok || (result.status !== "appended" && result.status !== "duplicate")) return result;
  return { ...result, unverified: verdict.reason ?? "" };
}
