/*
 * Where a read starts, shared by every reader of an inbox or stream: who may read an
 * inbox (and its stream), and which seq a client's offset means. An offset behind
 * retention is told "gone" with the earliest offset, never silently moved forward.
 */
import { TailhookError } from "../core/errors.js";
import { behindHorizon, earliestReadable, hasKeyFrames, snapshotPath, startView, type ReadView } from "../core/compaction.js";
import { formatOffset, parseOffset } from "../core/offsets.js";
import type { StoredInbox, StreamInfo } from "../core/types.js";
import type { HttpContext } from "./context.js";

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

/** Where a read starts: the seq after which to read, and the horizon of the compacted log it reads (if behind H). */
export interface ReadStart {
  afterSeq: number;
  view: ReadView;
}

/** Turns a client's offset into where to read; a position behind retention or H is 410. */
export function resolveReadStart(stream: StreamInfo, rawOffset: string | undefined): ReadStart {
  const offset = parseOffset(rawOffset);
  if (!offset) throw new TailhookError("bad_request", `malformed offset: ${rawOffset}`);
  if (offset.kind === "start") return { afterSeq: stream.firstSeq - 1, view: startView(stream, stream.firstSeq - 1) };
  if (offset.kind === "now") return { afterSeq: stream.tailSeq, view: undefined };
  if (offset.seq > stream.tailSeq) throw new TailhookError("bad_request", "offset is beyond the end of the stream");
  if (offset.seq < stream.firstSeq - 1 || behindHorizon(stream, offset.seq, offset.view)) throw streamGoneError(stream);
  return { afterSeq: offset.seq, view: offset.view };
}

/** Turns a client's offset into the seq after which to read (for positions stored without a view, e.g. consumers). */
export function resolveStart(stream: StreamInfo, rawOffset: string | undefined): number {
  return resolveReadStart(stream, rawOffset).afterSeq;
}

/** The inbox, if the token may read it (admin or the inbox's own); 401 or 404 otherwise. */
export async function authorizeInboxRead(ctx: HttpContext, token: string | undefined, inboxId: string): Promise<StoredInbox> {
  const inbox = inboxId === "" ? undefined : await ctx.store.getInbox(inboxId);
  ctx.auth.requireInboxReader(token, inbox);
  return inbox!;
}

/** The inbox and its stream, if the token may read it; 401 or 404 otherwise. */
export async function authorizeInboxStream(
  ctx: HttpContext,
  token: string | undefined,
  inboxId: string,
): Promise<{ inbox: StoredInbox; stream: StreamInfo }> {
  const inbox = await authorizeInboxRead(ctx, token, inboxId);
  const stream = await ctx.store.getStreamById(inbox.streamId);
  if (!stream) throw new TailhookError("not_found", "no such inbox");
  return { inbox, stream };
}
