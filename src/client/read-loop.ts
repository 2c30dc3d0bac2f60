/*
 * The one read loop under tail() and tailStream(). It long-polls a stream's deltas from
 * an offset, or reads the stream's key frame first (offset=snapshot, page by page along
 * the snapshot: cursors) and then the deltas after its X; it reconnects with backoff and
 * resumes after the last item it yielded; and a 410 is recovered as the caller asked:
 * from a fresh key frame, from the earliest retained message, or not at all. Items of a
 * page are yielded only once the whole page was read and checked, so a retry never
 * repeats one and a hole is never skipped over (docs/recovery.md).
 */
import { findGap } from "../core/continuity.js";
import { formatOffset, parseOffset } from "../core/offsets.js";
import { errorFromResponse, goneFromResponse, TailhookGoneError, TailhookHttpError, TailhookProtocolError } from "./errors.js";

/** What a reader does when what it asked for is no longer retained (a 410). */
export type GonePolicy = "snapshot" | "earliest" | "throw";

/** Why a reset marker came: the reader asked for a key frame, fell behind, or a key frame read started over. */
export type ResetCause = "start" | "gone" | "restart";

export interface LossNotice {
  requestedOffset: string;
  earliestOffset: string | undefined;
  /** Set when the server offered a key frame (`…?offset=snapshot`). */
  snapshot?: string;
}

export type ReadItem =
  /** Forget all state: a key frame as of `offset` follows. */
  | { kind: "reset"; offset: string; cause: ResetCause }
  | { kind: "snapshot"; message: unknown }
  /** The key frame is complete; the deltas after `offset` follow. */
  | { kind: "snapshot-end"; offset: string }
  | { kind: "delta"; offset: string; message: unknown };

export interface ReadLoopOptions {
  fetch: typeof fetch;
  streamUrl: string;
  headers: Record<string, string>;
  /** "snapshot", "-1", "now" or an offset; undefined reads after `consumer`'s committed offset. */
  from: string | undefined;
  consumer?: string;
  onGone: GonePolicy;
  signal?: AbortSignal;
  onRetry?: (error: unknown, delayMs: number) => void;
  onLoss?: (notice: LossNotice) => void;
  /** The seq a delta message carries (inbox envelopes); without it, messages are numbered back from Stream-Next-Offset. */
  seqOf?: (message: unknown) => number;
}

type Position =
  /** `offset` undefined: after the consumer's committed offset. */
  | { mode: "deltas"; offset: string | undefined }
  /** `offset` is "snapshot" (the first page) or a snapshot: cursor. */
  | { mode: "snapshot"; offset: string; cause: ResetCause };

interface Step {
  items: ReadItem[];
  next: Position;
  /** The stream is closed and was read to its end. */
  ended: boolean;
}

const SNAPSHOT = "snapshot";
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

function isRetryable(error: unknown): boolean {
  if (error instanceof TailhookProtocolError) return false;
  if (error instanceof TailhookHttpError) return error.status >= 500 || error.status === 429 || error.status === 408;
  return !(error instanceof DOMException && error.name === "AbortError");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function controlOf(message: unknown): string | undefined {
  const headers = (message as { headers?: unknown } | null)?.headers;
  if (headers === null || typeof headers !== "object" || Array.isArray(headers)) return undefined;
  const control = (headers as { control?: unknown }).control;
  return typeof control === "string" ? control : undefined;
}

function offsetOf(message: unknown): string {
  return String((message as { headers: { offset?: unknown } }).headers.offset);
}

async function get(options: ReadLoopOptions, params: URLSearchParams, requested: string): Promise<Response> {
  const response = await options.fetch(`${options.streamUrl}?${params}`, { headers: options.headers, signal: options.signal });
  if (response.status === 410) throw await goneFromResponse(response, requested);
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

async function jsonArray(response: Response): Promise<unknown[]> {
  // A text or binary stream has no messages to tell apart: refuse it rather than retry a parse forever.
  if (!/json/i.test(response.headers.get("content-type") ?? "")) {
    throw new TailhookProtocolError("the stream is not a JSON stream: only JSON streams can be tailed");
  }
  const body: unknown = await response.json();
  if (!Array.isArray(body)) throw new TailhookProtocolError("the stream did not answer a JSON array: only JSON streams can be tailed");
  return body;
}

/** One page of a key frame: the reset marker on the first, the snapshot-end marker on the last. */
async function readSnapshotPage(options: ReadLoopOptions, position: Position & { mode: "snapshot" }): Promise<Step> {
  const response = await get(options, new URLSearchParams({ offset: position.offset }), position.offset);
  const messages = await jsonArray(response);
  const next = response.headers.get("stream-next-offset") ?? "";
  const items: ReadItem[] = [];
  let end: string | undefined;
  messages.forEach((message, index) => {
    const control = controlOf(message);
    if (index === 0 && position.offset === SNAPSHOT) {
      if (control !== "snapshot-start") throw new TailhookProtocolError("a snapshot did not begin with snapshot-start");
      items.push({ kind: "reset", offset: offsetOf(message), cause: position.cause });
    } else if (control === "snapshot-end") {
      end = offsetOf(message);
      items.push({ kind: "snapshot-end", offset: end });
    } else {
      items.push({ kind: "snapshot", message });
    }
  });
  if (next.startsWith(`${SNAPSHOT}:`)) return { items, next: { ...position, offset: next }, ended: false };
  // The last page: its next offset is X itself, where the deltas begin.
  if (end === undefined || end !== next) throw new TailhookProtocolError("a snapshot ended without snapshot-end at its next offset");
  return { items, next: { mode: "deltas", offset: next }, ended: false };
}

/** One long-poll of deltas ("now" is pinned to a real offset by a catch-up read first). */
async function readDeltaPage(options: ReadLoopOptions, offset: string | undefined, cursor: string | undefined) {
  const params = new URLSearchParams(offset === "now" ? { offset } : { live: "long-poll" });
  if (offset !== undefined) params.set("offset", offset);
  if (options.consumer !== undefined) params.set("consumer", options.consumer);
  if (cursor) params.set("cursor", cursor);
  const requested = offset ?? `consumer ${options.consumer}`;
  const response = await get(options, params, requested);
  const next = response.headers.get("stream-next-offset") ?? offset;
  const messages = response.status === 204 || offset === "now" ? [] : await jsonArray(response);
  const nextSeq = parseOffset(next);
  const seqs = options.seqOf
    ? messages.map(options.seqOf)
    : messages.map((_, index) => (nextSeq?.kind === "after" ? nextSeq.seq : 0) - messages.length + index + 1);
  // The server checks its pages; a page with a hole anyway is a loss, never skipped over.
  const after = parseOffset(offset);
  const gap = findGap(seqs, after?.kind === "after" ? after.seq : undefined);
  if (gap) throw new TailhookGoneError(requested, formatOffset(gap.found - 1));
  const items: ReadItem[] = messages.map((message, index) => ({
    kind: "delta",
    offset: formatOffset(seqs[index]!),
    message,
  }));
  const last = items.at(-1);
  const step: Step = {
    items,
    next: { mode: "deltas", offset: last?.kind === "delta" ? last.offset : next },
    ended: response.headers.get("stream-closed") === "true" && response.headers.get("stream-up-to-date") === "true",
  };
  return { step, cursor: response.headers.get("stream-cursor") ?? cursor };
}

/** Where to go on after a 410, or undefined to give up (the error is thrown). */
function recover(options: ReadLoopOptions, position: Position, error: TailhookGoneError): Position | undefined {
  // A key frame whose cursor fell behind compaction: read a fresh one (its reset tells the caller).
  if (position.mode === "snapshot")
    return position.offset === SNAPSHOT ? undefined : { mode: "snapshot", offset: SNAPSHOT, cause: "restart" };
  // Without an earliest offset the 410 is not retention (a deleted stream, say): nothing to recover.
  if (error.earliestOffset === undefined || options.onGone === "throw") return undefined;
  const notice: LossNotice = { requestedOffset: error.requestedOffset, earliestOffset: error.earliestOffset };
  if (error.snapshot !== undefined) notice.snapshot = error.snapshot;
  options.onLoss?.(notice);
  if (options.onGone === "snapshot") return { mode: "snapshot", offset: SNAPSHOT, cause: "gone" };
  return { mode: "deltas", offset: error.earliestOffset };
}

/** A snapshot cursor the server no longer takes (the stream or its key definition changed): start the key frame over. */
function refusedCursor(position: Position, error: unknown): boolean {
  return position.mode === "snapshot" && position.offset !== SNAPSHOT && error instanceof TailhookHttpError && error.status === 400;
}

export async function* readLoop(options: ReadLoopOptions): AsyncGenerator<ReadItem> {
  let position: Position =
    options.from === SNAPSHOT ? { mode: "snapshot", offset: SNAPSHOT, cause: "start" } : { mode: "deltas", offset: options.from };
  let cursor: string | undefined;
  let backoff = MIN_BACKOFF_MS;
  while (!options.signal?.aborted) {
    let step: Step;
    try {
      if (position.mode === "snapshot") {
        step = await readSnapshotPage(options, position);
      } else {
        const read = await readDeltaPage(options, position.offset, cursor);
        step = read.step;
        cursor = read.cursor;
      }
      backoff = MIN_BACKOFF_MS;
    } catch (error) {
      if (options.signal?.aborted) return;
      if (error instanceof TailhookGoneError) {
        const next = recover(options, position, error);
        if (next === undefined) throw error;
        position = next;
        continue;
      }
      if (refusedCursor(position, error)) {
        position = { mode: "snapshot", offset: SNAPSHOT, cause: "restart" };
        continue;
      }
      if (!isRetryable(error)) throw error;
      const delay = Math.round(backoff * (0.5 + Math.random()));
      options.onRetry?.(error, delay);
      await sleep(delay, options.signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      continue;
    }
    position = step.next;
    for (const item of step.items) yield item;
    if (step.ended) return;
  }
}
