/*
 * Which stream a WebSocket upgrade asks for, and whether it may read it: the same
 * authorization and offsets as the HTTP reads of that stream. Both paths take the
 * token as `Authorization: Bearer` or `?token=` (a browser's WebSocket cannot set
 * headers). Any refusal here is answered as an ordinary HTTP error reply.
 */
import type { IncomingMessage } from "node:http";
import { TailhookError } from "../../core/errors.js";
import { isSnapshotOffset } from "../../core/state/snapshot.js";
import type { StreamInfo } from "../../core/types.js";
import { earliestReadable, hasKeyFrames } from "../../core/compaction.js";
import { snapshotPositionOf } from "../../live/snapshot-pages.js";
import { presentedToken } from "../auth.js";
import type { HttpContext } from "../context.js";
import { checkStreamName, openNamedForRead } from "../protocol/stream-access.js";
import { noteRoute } from "../request-log.js";
import { authorizeInboxStream, resolveReadStart } from "../stream-reads.js";
import type { ConnectionOptions, ConnectionStart } from "./connection.js";
import { INBOX_FRAMES, streamFrames } from "./frames.js";

const INBOX_PATH = /^\/v1\/ws\/inbox\/([^/]+)$/;
const STREAM_PREFIX = "/v1/ws/stream/";

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new TailhookError("bad_request", "the path is not valid percent-encoding");
  }
}

function offsetOf(url: URL): string | undefined {
  const offsets = url.searchParams.getAll("offset");
  if (offsets.length > 1) throw new TailhookError("bad_request", "send one offset");
  return offsets[0];
}

/** The WebSocket path of a stream, each segment percent-encoded. */
export function webSocketStreamPath(name: string): string {
  return `${STREAM_PREFIX}${name.split("/").map(encodeURIComponent).join("/")}`;
}

/** Where a gone frame says the stream's key frame can be read over WebSocket; null without key frames. */
function snapshotHintOf(stream: StreamInfo): string | null {
  return hasKeyFrames(stream) ? `${webSocketStreamPath(stream.name)}?offset=snapshot` : null;
}

/**
 * Where a stream socket starts. An offset behind retention is not refused: the socket
 * opens and says "gone" in a frame, because a browser never sees a refused upgrade's status.
 */
function streamStart(stream: StreamInfo, offset: string | undefined): ConnectionStart {
  if (isSnapshotOffset(offset)) return { snapshot: snapshotPositionOf(stream, offset!) };
  try {
    return resolveReadStart(stream, offset);
  } catch (error) {
    if (error instanceof TailhookError && error.code === "gone") return { goneAt: earliestReadable(stream) };
    throw error;
  }
}

/** Authorizes an upgrade request and says what its connection reads. */
export async function openUpgrade(ctx: HttpContext, request: IncomingMessage): Promise<ConnectionOptions> {
  const url = new URL(request.url ?? "/", "http://upgrade.invalid");
  const inboxMatch = INBOX_PATH.exec(url.pathname);
  const streamPath = url.pathname.startsWith(STREAM_PREFIX) ? url.pathname.slice(STREAM_PREFIX.length) : undefined;
  if (!inboxMatch && streamPath === undefined) throw new TailhookError("not_found", "no such route");
  noteRoute(request, inboxMatch ? "/v1/ws/inbox/:id" : "/v1/ws/stream/*");
  if (ctx.isShuttingDown()) throw new TailhookError("shutting_down", "the server is stopping");
  const token = presentedToken(request.headers, { token: url.searchParams.get("token") ?? undefined });
  if (inboxMatch) {
    let inboxId: string;
    try {
      inboxId = decodeURIComponent(inboxMatch[1]!);
    } catch {
      inboxId = "";
    }
    const { stream } = await authorizeInboxStream(ctx, token, inboxId);
    const start = resolveReadStart(stream, url.searchParams.get("offset") ?? undefined);
    return { streamId: stream.id, start, frames: INBOX_FRAMES, snapshotHint: snapshotHintOf(stream), noun: "inbox" };
  }
  const name = checkStreamName(decoded(streamPath!));
  const { stream } = await openNamedForRead(ctx, name, token);
  return {
    streamId: stream.id,
    start: streamStart(stream, offsetOf(url)),
    frames: streamFrames(stream),
    snapshotHint: snapshotHintOf(stream),
    noun: "stream",
  };
}
