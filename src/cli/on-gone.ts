/*
 * `--on-gone snapshot|earliest|stop` for tail and forward: what to do once the position
 * was removed by retention (or compaction). "stop" exits 3 with what was lost and how to
 * re-sync; the other two go on, with one warning on stderr per loss.
 */
import type { LossNotice } from "../client/client.js";
import { CliError, EXIT_GONE, UsageError } from "./errors.js";

export type OnGoneFlag = "snapshot" | "earliest" | "stop";

export const ON_GONE_HELP =
  "after events were removed before they were read: snapshot (the latest event per entity, then on), earliest or stop (exit 3)";

export function parseOnGone(raw: string): OnGoneFlag {
  if (raw !== "snapshot" && raw !== "earliest" && raw !== "stop") {
    throw new UsageError(`--on-gone must be snapshot, earliest or stop, got ${raw}`);
  }
  return raw;
}

/** The client names a consumer's read "consumer <name>": say where that is. */
function position(requestedOffset: string): string {
  return requestedOffset.startsWith("consumer ") ? `the ${requestedOffset}'s committed offset` : `offset ${requestedOffset}`;
}

/** The warning for a loss that tailing recovers from; `what` says what was missed ("read", "delivered"). */
export function lossWarning(notice: LossNotice, onGone: OnGoneFlag, what: string): string {
  const lost = `events after ${position(notice.requestedOffset)} were removed by retention before they were ${what}`;
  if (onGone === "snapshot") return `tailhook: warning: ${lost}; re-syncing from the inbox's key frame (the latest event per entity)\n`;
  const hint = notice.snapshot === undefined ? "" : " (a key frame is available: --on-gone snapshot)";
  return `tailhook: warning: ${lost}; going on from the earliest retained event${hint}\n`;
}

/** Exit 3: fell behind, and --on-gone stop says not to go on. */
export function goneError(requestedOffset: string, earliestOffset: string | undefined): CliError {
  const earliest = earliestOffset === undefined ? "" : ` (the earliest retained offset is ${earliestOffset})`;
  return new CliError(
    `stopped: events after ${position(requestedOffset)} were removed before they were read${earliest}; --on-gone snapshot re-syncs from the inbox's key frame, --on-gone earliest goes on from the earliest event`,
    EXIT_GONE,
  );
}
