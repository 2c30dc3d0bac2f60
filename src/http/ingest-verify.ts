/*
 * What ingest does with a signature check's outcome (inboxes with `settings.verify`).
 * The store checks the signature over the raw bytes in the append's own turn
 * (AppendEventOptions.verify) and stores the verdict with the event; here a failure is
 * counted, and a request refused in enforce mode is noted in the refusal log for the
 * admin and answered 401. The sender learns only that verification failed.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { TailhookError } from "../core/errors.js";
import type { CapturedRequest, StoredInbox } from "../core/types.js";
import type { RefusalLog } from "../core/verify/refusals.js";
import type { AppendEventResult } from "../storage/store.js";
import { refusalReply, sendErrorRaw } from "./errors.js";
import { noteFailure } from "./request-log.js";
import type { Metrics } from "../metrics/metrics.js";

/** Why the request failed its check, if it did (stored anyway in annotate mode). */
function failureOf(result: AppendEventResult): string | undefined {
  if (result.status === "refused") return result.reason;
  return result.status === "appended" || result.status === "duplicate" ? result.unverified : undefined;
}

/** Counts a failed check; answers a refused request, and then returns true. */
export function answerVerification(
  req: IncomingMessage,
  res: ServerResponse,
  inbox: StoredInbox,
  request: CapturedRequest,
  result: AppendEventResult,
  refusals: RefusalLog,
  metrics?: Metrics,
): result is Extract<AppendEventResult, { status: "refused" }> {
  const failure = failureOf(result);
  const settings = inbox.settings.verify;
  if (failure !== undefined && settings) metrics?.countVerificationFailure(settings.scheme, settings.mode);
  if (result.status !== "refused") return false;
  refusals.note(inbox.id, request, result.reason);
  // The log line says why; the sender is not told which check it failed.
  noteFailure(req, new TailhookError("unauthorized", `signature verification failed: ${result.reason}`));
  sendErrorRaw(res, refusalReply(new TailhookError("unauthorized", "signature verification failed; nothing was stored")));
  return true;
}
