/*
 * Snapshot reads of a state stream (docs/key-frames.md): `offset=snapshot` starts one
 * as of X, the stream's tail then; each page's Stream-Next-Offset is an opaque cursor
 * (X and the last (type, key) examined) until the page that holds snapshot-end, whose
 * next offset is X itself, so the reader goes on with the deltas after X. Keys come in
 * UTF-8 byte order of (type, key), the order of both stores' indexes.
 */
import { rawMember } from "./raw-json.js";

export const SNAPSHOT_OFFSET = "snapshot";
const CURSOR_PREFIX = "snapshot:";
const CURSOR_VERSION = 1;

export interface KeyPosition {
  type: string;
  key: string;
}

/** Where a snapshot read stands: which stream, as of which seq, after which key (null: from the first). */
export interface SnapshotPosition {
  streamId: number;
  asOfSeq: number;
  after: KeyPosition | null;
  /** An inbox stream's keyFrameVersion: a cursor of an earlier key definition is refused (0 when absent). */
  keyFrameVersion?: number;
}

/** One page a store reads: the live keys' values among the next keys after `after`. */
export interface SnapshotPageRequest {
  asOfSeq: number;
  after: KeyPosition | null;
  /** Keys examined per page at most (live, deleted or not yet written as of X alike). */
  maxKeys: number;
  /** Stop once the values read reach this many bytes (at least one value always comes). */
  maxBytes: number;
}

export interface SnapshotValue {
  type: string;
  key: string;
  seq: number;
  /** The whole change message that set the value (for an inbox: the event's body). */
  data: Buffer;
  /** An inbox event's envelope fields (core/capture.ts); null for a state stream's message. */
  meta: string | null;
  createdAt: number;
}

export interface SnapshotPage {
  values: SnapshotValue[];
  /** The last key examined (the next page starts after it), or null when none was. */
  last: KeyPosition | null;
  /** No keys after `last`: the snapshot is complete. */
  done: boolean;
  /**
   * The stream's key-frame horizon as the page's own read saw it (0 when unknown).
   * Above asOfSeq, compaction may have removed values the page needed: it is void.
   */
  horizonSeq: number;
}

export function formatSnapshotCursor(position: SnapshotPosition & { after: KeyPosition }): string {
  const { streamId, asOfSeq, after, keyFrameVersion = 0 } = position;
  const fields: unknown[] = [CURSOR_VERSION, streamId, asOfSeq, after.type, after.key];
  // Only inbox streams whose keyFrame changed have a version: state stream cursors keep five fields.
  if (keyFrameVersion > 0) fields.push(keyFrameVersion);
  return CURSOR_PREFIX + Buffer.from(JSON.stringify(fields)).toString("base64url");
}

export function isSnapshotOffset(raw: string | undefined): boolean {
  return raw === SNAPSHOT_OFFSET || (raw?.startsWith(CURSOR_PREFIX) ?? false);
}

/** A cursor this server handed out, or undefined when it is not one. */
export function parseSnapshotCursor(raw: string): SnapshotPosition | undefined {
  if (!raw.startsWith(CURSOR_PREFIX)) return undefined;
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(raw.slice(CURSOR_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (!Array.isArray(fields) || (fields.length !== 5 && fields.length !== 6)) return undefined;
  const [version, streamId, asOfSeq, type, key, keyFrameVersion = 0] = fields as unknown[];
  if (version !== CURSOR_VERSION || !Number.isSafeInteger(streamId) || !Number.isSafeInteger(asOfSeq)) return undefined;
  if (typeof type !== "string" || typeof key !== "string" || (asOfSeq as number) < 0) return undefined;
  if (!Number.isSafeInteger(keyFrameVersion) || (keyFrameVersion as number) < 0) return undefined;
  return { streamId: streamId as number, asOfSeq: asOfSeq as number, after: { type, key }, keyFrameVersion: keyFrameVersion as number };
}

export function snapshotControl(control: "snapshot-start" | "snapshot-end", offset: string): Buffer {
  return Buffer.from(JSON.stringify({ headers: { control, offset } }));
}

/** The insert a snapshot carries for a live key: its value as appended, byte for byte. */
export function snapshotInsert(value: SnapshotValue): Buffer {
  const raw = rawMember(value.data, "value") ?? Buffer.from("null");
  return Buffer.concat([
    Buffer.from(`{"type":${JSON.stringify(value.type)},"key":${JSON.stringify(value.key)},"value":`),
    raw,
    Buffer.from(`,"headers":{"operation":"insert"}}`),
  ]);
}

/** UTF-8 byte order of (type, key): the order snapshots list keys in. */
export function compareKeys(a: KeyPosition, b: KeyPosition): number {
  return Buffer.compare(Buffer.from(a.type), Buffer.from(b.type)) || Buffer.compare(Buffer.from(a.key), Buffer.from(b.key));
}
