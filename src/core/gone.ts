/*
 * The one 410 for a read position that lost events, used by every transport (and by
 * live/'s snapshot pages): pure, so it lives in core. It says the earliest offset a
 * reader can go on from and, for a stream with key frames, where its snapshot is.
 */
import { earliestReadable, hasKeyFrames, snapshotPath } from "./compaction.js";
import { TailhookError } from "./errors.js";
import { formatOffset } from "./offsets.js";
import type { StreamInfo } from "./types.js";

/**
 * The one 410 for a read position that lost events: to retention, or to compaction
 * behind the key-frame horizon. `snapshot`: the stream has key frames, and its
 * snapshot (this address) gives the state back; the funnel adds it as a Link too.
 */
export function goneError(earliestSeq: number, snapshot?: string): TailhookError {
  const message =
    snapshot === undefined
      ? "the offset is before the earliest retained event; events were lost to retention"
      : "the offset is before the earliest retained event (retention or compaction removed events); read the snapshot, then go on from its end";
  return new TailhookError("gone", message, {
    earliestOffset: formatOffset(earliestSeq),
    ...(snapshot === undefined ? {} : { snapshot }),
  });
}

/** goneError for a stream: with its snapshot when it has key frames. */
export function streamGoneError(stream: StreamInfo, earliestSeq = earliestReadable(stream)): TailhookError {
  return goneError(earliestSeq, hasKeyFrames(stream) ? snapshotPath(stream.name) : undefined);
}
