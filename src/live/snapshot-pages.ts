/*
 * Snapshot pages of a stream with key frames (docs/key-frames.md), shared by every
 * transport: catch-up and long-poll answer one page, SSE and WebSocket follow the
 * pages and then the deltas after X (LiveStreams.follow's snapshot mode). A page holds
 * at most PAGE_LIMITS keys and bytes; the first starts with snapshot-start, the last
 * ends with snapshot-end, and its next offset is X, an ordinary offset.
 */
import { messageJson } from "../core/capture.js";
import { TailhookError } from "../core/errors.js";
import { formatOffset } from "../core/offsets.js";
import {
  formatSnapshotCursor,
  parseSnapshotCursor,
  SNAPSHOT_OFFSET,
  snapshotControl,
  snapshotInsert,
  type SnapshotPosition,
  type SnapshotValue,
} from "../core/state/snapshot.js";
import type { StreamInfo } from "../core/types.js";
import type { Store } from "../storage/store.js";
import { PAGE_LIMITS } from "./pages.js";

export interface SnapshotPageRead {
  /** JSON messages: control messages and one change (or inbox event envelope) per live key. */
  messages: Buffer[];
  /** A snapshot cursor while pages remain; X on the page holding snapshot-end. */
  nextOffset: string;
  done: boolean;
  /** X: the snapshot is the state as of this seq; deltas follow after it. */
  asOfSeq: number;
  /** Where the next page starts; null once the snapshot is complete. */
  next: SnapshotPosition | null;
}

/** Does this stream answer offset=snapshot? A state stream or an inbox with settings.keyFrame. */
export function hasKeyFrames(stream: StreamInfo): boolean {
  return stream.stateProtocol !== null || stream.keyFrame !== null;
}

/** Checks a snapshot offset ("snapshot" or a cursor) before anything is sent, and says where it stands. */
export function snapshotPositionOf(stream: StreamInfo, offset: string): SnapshotPosition {
  if (!hasKeyFrames(stream)) {
    throw new TailhookError(
      "bad_request",
      "offset=snapshot reads a state stream (one created with Stream-State: v1) or an inbox stream with settings.keyFrame",
    );
  }
  const keyFrameVersion = stream.keyFrameVersion;
  if (offset === SNAPSHOT_OFFSET) return { streamId: stream.id, asOfSeq: stream.tailSeq, after: null, keyFrameVersion };
  const position = parseSnapshotCursor(offset);
  if (!position) throw new TailhookError("bad_request", `malformed offset: ${offset}`);
  // A cursor of an earlier stream under this name, or of an earlier keyFrame, would mix two states.
  if (position.streamId !== stream.id || position.asOfSeq > stream.tailSeq || position.keyFrameVersion !== keyFrameVersion) {
    throw new TailhookError("bad_request", "the snapshot cursor is not one of this stream's; start again with offset=snapshot");
  }
  return position;
}

/** An inbox snapshot holds each entity's latest event exactly as a delta read shows it. */
function eventEnvelope(value: SnapshotValue): Buffer {
  return Buffer.from(messageJson(value));
}

/** One page of the snapshot at `position`. */
export async function readSnapshotPage(store: Store, stream: StreamInfo, position: SnapshotPosition): Promise<SnapshotPageRead> {
  const { asOfSeq, after } = position;
  const page = await store.readSnapshotPage(stream.id, {
    asOfSeq,
    after,
    maxKeys: PAGE_LIMITS.maxMessages,
    maxBytes: PAGE_LIMITS.maxBytes,
  });
  const asOf = formatOffset(asOfSeq);
  const messages = page.values.map(stream.stateProtocol !== null ? snapshotInsert : eventEnvelope);
  if (after === null) messages.unshift(snapshotControl("snapshot-start", asOf));
  // No key examined means none remain: the snapshot ends here too.
  if (page.done || page.last === null) {
    messages.push(snapshotControl("snapshot-end", asOf));
    return { messages, nextOffset: asOf, done: true, asOfSeq, next: null };
  }
  const next = { ...position, after: page.last };
  return { messages, nextOffset: formatSnapshotCursor(next), done: false, asOfSeq, next };
}
