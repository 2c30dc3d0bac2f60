/*
 * The ingest step for inboxes with `settings.verify`: checks the signature over the raw
 * bytes, records the verdict on the request (so it is stored with the event), and in
 * enforce mode answers a failing request 401 without storing it, noting it in the
 * refusal log for the admin. The sender learns only that verification failed.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { TailhookError } from "../core/errors.js";
import type { CapturedRequest, StoredInbox } from "../core/types.js";
import { verifyRequest } from "../core/verify/index.js";
import type { RefusalLog } from "../core/verify/refusals.js";
import { refusalReply, sendErrorRaw } from "./errors.js";
import { noteFailure } from "./request-log.js";
import type { Metrics } from "../metrics/metrics.js";

/** True when the request may be stored; false when it was refused (the reply is sent). */
export function verifyOrRefuse(
  req: IncomingMessage,
  res: ServerResponse,
  inbox: StoredInbox,
  request: CapturedRequest,
  refusals: RefusalLog,
  metrics?: Metrics,
): boolean {
  const settings = inbox.settings.verify!;
  const verdict = verifyRequest(settings, request);
  if (!verdict.ok) metrics?.countVerificationFailure(settings.scheme, settings.mode);
  if (!verdict.ok && settings.mode === "enforce") {
    refusals.note(inbox.id, request, verdict.reason ?? "");
    // The log line says why; the sender is not told which check it failed.
    noteFailure(req, new TailhookError("unauthorized", `signature verification failed: ${verdict.reason}`));
    sendErrorRaw(res, refusalReply(new TailhookError("unauthorized", "signature verification failed; nothing was stored")));
    return false;
  }
  request.annotations = { ...request.annotations, verification: verdict };
  return true;
}
