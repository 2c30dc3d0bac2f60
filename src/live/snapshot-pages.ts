/*
 * Snapshot pages of a stream with key frames (docs/key-frames.md), shared by every
 * transport: catch-up and long-poll answer one page, SSE and WebSocket follow the
 * pages and then the deltas after X (LiveStreams.follow's snapshot mode). A page holds
 * at most PAGE_LIMITS keys and bytes; the first starts with snapshot-start, the last
 * ends with snapshot-end, and its next offset is X, an ordinary offset.
 */
import { messageJson } from "../core/capture.js";
import { hasKeyFrames } from "../core/compaction.js";
import { TailhookError } from "../core/errors.js";
import { streamGoneError } from "../core/gone.js";
import { formatOffset } from "../core/offsets.js";
import {
  formatSnapshotCursor,
  parseSnapshotCursor,
  SNAPSHOT_OFFSET,
  snapshotControl,
  snapshotInsert,
  type SnapshotPage,
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
  // Compaction passed X: the values as of X may be gone, so this snapshot cannot be finished exactly.
  if (position.asOfSeq < stream.horizonSeq) throw streamGoneError(stream);
  return position;
}

/** A fresh snapshot whose X a concurrent pass overtook starts again at the new tail, this many times at most. */
const FRESH_SNAPSHOT_TRIES = 5;

/** An inbox snapshot holds each entity's latest event exactly as a delta read shows it. */
function eventEnvelope(value: SnapshotValue): Buffer {
  return Buffer.from(messageJson(value));
}

/**
 * One page of the snapshot at `position`. A compaction pass past X voids the page (the
 * store says so in the same read transaction): a fresh snapshot starts again as of the
 * new tail, a snapshot already under way answers 410 (the reader starts again).
 */
export async function readSnapshotPage(
  store: Store,
  stream: StreamInfo,
  position: SnapshotPosition,
  maxKeys: number = PAGE_LIMITS.maxMessages,
): Promise<SnapshotPageRead> {
  let current = { stream, position };
  for (let tries = 1; ; tries++) {
    const page = await store.readSnapshotPage(current.stream.id, {
      asOfSeq: current.position.asOfSeq,
      after: current.position.after,
      maxKeys,
      maxBytes: PAGE_LIMITS.maxBytes,
    });
    if (page.horizonSeq <= current.position.asOfSeq) return framePage(current.stream, current.position, page);
    const latest = await store.getStreamById(current.stream.id);
    if (current.position.after !== null || tries >= FRESH_SNAPSHOT_TRIES || !latest) {
      throw streamGoneError({ ...(latest ?? current.stream), horizonSeq: page.horizonSeq });
    }
    current = { stream: latest, position: snapshotPositionOf(latest, SNAPSHOT_OFFSET) };
  }
}

function framePage(stream: StreamInfo, position: SnapshotPosition, page: SnapshotPage): SnapshotPageRead {
  const { asOfSeq, after } = position;
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
