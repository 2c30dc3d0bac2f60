/*
 * Which stream a /v1/stream/<name> request means, and whether the caller may use it.
 * "inbox/<id>" is an inbox's event stream: read with the inbox's token or the admin
 * token, written only by its webhooks. Every other name is a general stream: the
 * admin token may do everything, and `serve --open` lets anyone.
 */
import type { FastifyRequest } from "fastify";
import { TailhookError } from "../../core/errors.js";
import type { StreamInfo } from "../../core/types.js";
import { isExpired } from "../../core/streams.js";
import { type GeneralStreams } from "../../storage/streams.js";
import { requestToken } from "../auth.js";
import { type HttpContext } from "../context.js";
import { inboxIdOf } from "../../core/stream-names.js";
export { isInboxStreamName } from "../../core/stream-names.js";
import { grantCovers, type StreamAccess } from "../stream-grants.js";
import { authorizeInboxStream } from "../stream-reads.js";

export const STREAM_ROOT = "/v1/stream";
const MAX_NAME_LENGTH = 1024;
const RESERVED_PREFIX = "__ds";
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

export interface StreamTarget {
  name: string;
  stream: StreamInfo;
  /** A general stream (protocol writes allowed), as opposed to an inbox's events. */
  general: boolean;
  /** Anyone may read it (open mode), so shared caches may keep it. */
  public: boolean;
}

/** Checks a stream name taken from a URL path (already percent-decoded). */
export function checkStreamName(name: string): string {
  if (name === "" || name.length > MAX_NAME_LENGTH || name.split("/").some((part) => part === "" || part === "." || part === "..")) {
    throw new TailhookError("bad_request", "a stream name is one or more non-empty path segments, at most 1024 characters");
  }
  // Names reach headers (Location, tokens' prefixes): control characters and non-ASCII
  // would make every reply about the stream fail in Node, so they are refused up front.
  if (!PRINTABLE_ASCII.test(name)) {
    throw new TailhookError("bad_request", "a stream name may only hold printable ASCII characters (space to ~, percent-encoded in URLs)");
  }
  // The protocol reserves "__ds" for its control APIs (subscriptions), routed elsewhere.
  if (name === RESERVED_PREFIX || name.startsWith(`${RESERVED_PREFIX}/`)) throw new TailhookError("not_found", "no such stream");
  return name;
}

/** The URL path of a stream, each segment percent-encoded (for Location headers and links). */
export function streamUrlPath(name: string): string {
  return `${STREAM_ROOT}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

export function streamName(request: FastifyRequest): string {
  return checkStreamName((request.params as { "*": string })["*"]);
}

function requireGeneral(ctx: HttpContext): GeneralStreams {
  if (!ctx.store.general) throw new TailhookError("not_implemented", "this storage backend does not support general streams");
  return ctx.store.general;
}

/** For what only the admin may do with general streams (subscriptions, token management), or anyone with --open. */
export function generalStreamsForToken(ctx: HttpContext, presented: string | undefined): GeneralStreams {
  if (!ctx.config.open) ctx.auth.requireAdmin(presented);
  return requireGeneral(ctx);
}

export function generalStreamsFor(ctx: HttpContext, request: FastifyRequest): GeneralStreams {
  return generalStreamsForToken(ctx, requestToken(request));
}

/**
 * May the presented token use the general stream `name` this way? Anyone with
 * --open, the admin always, and a stream token within its prefix and access. A wrong
 * token and a token for other streams get the same 401.
 */
export async function authorizeStream(
  ctx: HttpContext,
  presented: string | undefined,
  name: string,
  access: StreamAccess,
): Promise<GeneralStreams> {
  const general = requireGeneral(ctx);
  if (ctx.config.open || ctx.auth.isAdmin(presented)) return general;
  const grant = presented === undefined || !ctx.grants ? undefined : await ctx.grants.find(presented);
  if (grant && grantCovers(grant, name, access, Date.now())) return general;
  throw new TailhookError("unauthorized", `the admin token or a stream token that may ${access} this stream is required`);
}

/** A live general stream, or 404 (absent or expired) / 410 (soft-deleted). */
export async function liveGeneralStream(ctx: HttpContext, name: string): Promise<StreamInfo> {
  const stream = await ctx.store.getStream(name);
  if (!stream || isExpired(stream, Date.now())) throw new TailhookError("not_found", "no such stream");
  if (stream.softDeleted) throw new TailhookError("gone", "the stream was deleted; its forks still read its data");
  return stream;
}

/** Opens a stream for reading; a read (not a HEAD) restarts a sliding TTL. */
export async function openForRead(ctx: HttpContext, request: FastifyRequest, touch = true): Promise<StreamTarget> {
  return openNamedForRead(ctx, streamName(request), requestToken(request), touch);
}

/** The same, for a checked name and a presented token (the WebSocket upgrade has no Fastify request). */
export async function openNamedForRead(ctx: HttpContext, name: string, token: string | undefined, touch = true): Promise<StreamTarget> {
  const inboxId = inboxIdOf(name);
  if (inboxId !== undefined) {
    const { stream } = await authorizeInboxStream(ctx, token, inboxId);
    return { name, stream, general: false, public: false };
  }
  const general = await authorizeStream(ctx, token, name, "read");
  const stream = await liveGeneralStream(ctx, name);
  if (touch) general.touchStream(stream);
  return { name, stream, general: true, public: ctx.config.open };
}
