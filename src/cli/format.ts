/*
 * How events look in a terminal: one line each, or the envelope as NDJSON with its
 * offset. A key frame is framed by two marker lines (docs/recovery.md).
 */
import type { ResetMarker, SnapshotEndMarker, SnapshotEvent } from "../client/client.js";
import type { EventEnvelope } from "../core/types.js";
import { parseOffset } from "../core/offsets.js";
import { PLAIN, type Palette } from "./colour.js";

const PREVIEW_CHARS = 80;

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function eventTarget(event: EventEnvelope): string {
  return `${event.path || "/"}${event.query ? `?${event.query}` : ""}`;
}

export function formatEventLine(event: EventEnvelope, paint: Palette = PLAIN): string {
  const preview =
    event.bodyEncoding === "utf8"
      ? event.body.slice(0, PREVIEW_CHARS).replace(/[\u0000-\u001f\u007f]+/g, " ")
      : `<binary ${formatSize(event.size)}>`;
  return [
    paint.dim(event.receivedAt),
    paint.bold(`#${event.seq}`),
    paint.cyan(event.method),
    target(event, paint),
    event.contentType ?? "-",
    formatSize(event.size),
    preview + (event.bodyEncoding === "utf8" && event.body.length > PREVIEW_CHARS ? "…" : ""),
  ].join("  ");
}

function target(event: EventEnvelope, paint: Palette): string {
  return event.verification && !event.verification.ok ? paint.red(eventTarget(event)) : eventTarget(event);
}

/** The envelope plus `offset`: where to resume (`--from`) to continue after this event. */
export function formatEventJson(event: EventEnvelope, offset: string): string {
  return JSON.stringify({ ...event, offset });
}

type KeyFrameItem = ResetMarker | SnapshotEvent | SnapshotEndMarker;

/** NDJSON: a key frame's events are envelopes with `"snapshot": true` (no offset: only its end is a resume point). */
export function formatKeyFrameJson(item: KeyFrameItem): string {
  if (item.kind === "snapshot") return JSON.stringify({ ...item.event, snapshot: true });
  return JSON.stringify(item);
}

function seqText(offset: string): string {
  const parsed = parseOffset(offset);
  return parsed?.kind === "after" ? `#${parsed.seq}` : offset;
}

export function formatKeyFrameLine(item: KeyFrameItem, paint: Palette = PLAIN): string {
  if (item.kind === "snapshot") return `${paint.dim("key frame")}  ${formatEventLine(item.event, paint)}`;
  if (item.kind === "reset") return paint.bold(`── key frame as of ${seqText(item.offset)}: the latest event per entity ──`);
  return paint.bold(`── end of key frame; the events after ${seqText(item.offset)} follow ──`);
}
