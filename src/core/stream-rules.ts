/*
 * The decisions of general-stream writes, without I/O, shared by both stores: is a
 * repeated PUT the same stream, where does a fork start, may this append go in (closed?
 * content type? producer epoch and seq? Stream-Seq?). Each store loads the rows, asks
 * here, and writes what was decided inside its own transaction.
 */
import type { StreamInfo } from "./types.js";
import {
  mediaType,
  type AppendRequest,
  type AppendResult,
  type CreateStreamRequest,
  type CreateStreamResult,
  type ForkRequest,
  type ProducerClaim,
} from "./streams.js";

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";
/** Reported as a stream's new tail when readers must wake without new data (closed, deleted). */
export const WAKE_ALL = Number.MAX_SAFE_INTEGER;

/** A stream row with the columns only writers need. */
export type WriterStream = StreamInfo & { lastStreamSeq: string | null; closedBy: string | null; forkRequest: string | null };

export interface ProducerState {
  epoch: number;
  lastSeq: number;
}

export function producerKey(producer: ProducerClaim): string {
  return JSON.stringify([producer.id, producer.epoch, producer.seq]);
}

/** What a fork was asked for, kept to answer a repeated PUT with 200 or 409. */
export function forkRequestKey(request: CreateStreamRequest): string | null {
  if (!request.fork) return null;
  const { source, offsetSeq, subOffset } = request.fork;
  return JSON.stringify({ source, offsetSeq, subOffset, ttlSeconds: request.ttlSeconds, expiresAt: request.expiresAt });
}

/** A repeated PUT matches when content type, expiry, closure and fork request all match. */
export function sameConfig(existing: WriterStream, request: CreateStreamRequest): boolean {
  if (existing.closed !== request.closed) return false;
  if (existing.stateProtocol !== request.stateProtocol) return false;
  if (existing.forkRequest !== forkRequestKey(request)) return false;
  if (request.fork) return request.contentType === null || mediaType(request.contentType) === mediaType(existing.contentType);
  return (
    mediaType(request.contentType ?? DEFAULT_CONTENT_TYPE) === mediaType(existing.contentType) &&
    existing.ttlSeconds === request.ttlSeconds &&
    existing.expiresAt === request.expiresAt
  );
}

/** The source seq a fork diverges after, before any sub-offset. */
export function forkAnchor(fork: ForkRequest, source: StreamInfo): number {
  return fork.offsetSeq ?? source.tailSeq;
}

/** Whether planning this fork needs the data of the source's message anchor+1 (a byte sub-offset). */
export function forkNeedsNextMessage(fork: ForkRequest, source: StreamInfo): boolean {
  return fork.subOffset > 0 && mediaType(source.contentType) !== "application/json" && forkAnchor(fork, source) < source.tailSeq;
}

export interface ForkPlan {
  contentType: string;
  forkSeq: number;
  /** Bytes of the source's next message inherited by a byte sub-offset, stored as the fork's own. */
  partial: Buffer | null;
  ttlSeconds: number | null;
  expiresAt: number | null;
}

/** Where a fork of a live source starts, or why it cannot be made. */
export function planFork(
  request: CreateStreamRequest,
  source: WriterStream,
  nextMessage: Buffer | undefined,
): ForkPlan | CreateStreamResult {
  const fork = request.fork!;
  if (source.softDeleted) return { status: "conflict", reason: "the source stream was deleted" };
  // A fork's key index would have to start from its source's as of the fork point: not built yet.
  if (source.stateProtocol !== null || request.stateProtocol !== null)
    return { status: "conflict", reason: "state streams cannot be forked yet" };
  if (request.contentType !== null && mediaType(request.contentType) !== mediaType(source.contentType)) {
    return { status: "conflict", reason: "the content type differs from the source stream's" };
  }
  const anchor = forkAnchor(fork, source);
  if (anchor > source.tailSeq) return { status: "bad_fork", reason: "the fork offset is beyond the source stream's tail" };
  let forkSeq = anchor;
  let partial: Buffer | null = null;
  if (fork.subOffset > 0) {
    if (mediaType(source.contentType) === "application/json") {
      forkSeq = anchor + fork.subOffset;
      if (forkSeq > source.tailSeq) return { status: "bad_fork", reason: "the fork sub-offset is past the source's last message" };
    } else {
      if (!nextMessage || fork.subOffset > nextMessage.length) {
        return { status: "bad_fork", reason: "the fork sub-offset is past the next data boundary" };
      }
      if (fork.subOffset === nextMessage.length) forkSeq = anchor + 1;
      else partial = Buffer.from(nextMessage.subarray(0, fork.subOffset));
    }
  }
  // A fork with no expiry of its own keeps its source's (protocol §4.2 table).
  const ownExpiry = request.ttlSeconds !== null || request.expiresAt !== null;
  return {
    contentType: source.contentType,
    forkSeq,
    partial,
    ttlSeconds: ownExpiry ? request.ttlSeconds : source.ttlSeconds,
    expiresAt: ownExpiry ? request.expiresAt : source.expiresAt,
  };
}

type ProducerCheck = { outcome: "accept" } | { outcome: "duplicate"; lastSeq: number } | { outcome: "reject"; result: AppendResult };

function checkProducer(state: ProducerState | undefined, producer: ProducerClaim): ProducerCheck {
  if (!state) {
    return producer.seq === 0
      ? { outcome: "accept" }
      : { outcome: "reject", result: { status: "producer_seq_gap", expected: 0, received: producer.seq } };
  }
  if (producer.epoch < state.epoch) return { outcome: "reject", result: { status: "stale_epoch", epoch: state.epoch } };
  if (producer.epoch > state.epoch) {
    return producer.seq === 0 ? { outcome: "accept" } : { outcome: "reject", result: { status: "new_epoch_needs_seq_zero" } };
  }
  if (producer.seq <= state.lastSeq) return { outcome: "duplicate", lastSeq: state.lastSeq };
  if (producer.seq > state.lastSeq + 1) {
    return { outcome: "reject", result: { status: "producer_seq_gap", expected: state.lastSeq + 1, received: producer.seq } };
  }
  return { outcome: "accept" };
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Whether an append to a live stream may be written, or what to answer instead. The
 * protocol's precedence: closed, then content type, then sequence checks.
 */
export function judgeAppend(
  stream: WriterStream,
  request: AppendRequest,
  producerState: ProducerState | undefined,
): AppendResult | "write" {
  const producer = request.producer;
  if (stream.closed) {
    if (producer && stream.closedBy === producerKey(producer)) return { status: "duplicate", stream, producerSeq: producer.seq };
    if (request.close && request.messages.length === 0) return { status: "duplicate", stream, producerSeq: null };
    return { status: "closed", stream };
  }
  if (request.messages.length > 0 && (request.contentType === null || mediaType(request.contentType) !== mediaType(stream.contentType))) {
    return { status: "content_type_mismatch", stream };
  }
  if (producer) {
    const check = checkProducer(producerState, producer);
    if (check.outcome === "reject") return check.result;
    if (check.outcome === "duplicate") return { status: "duplicate", stream, producerSeq: check.lastSeq };
  }
  if (request.streamSeq !== null && stream.lastStreamSeq !== null && byteCompare(request.streamSeq, stream.lastStreamSeq) <= 0) {
    return { status: "stream_seq_regression", stream };
  }
  return "write";
}
