/* How events look in a terminal: one line each, or the envelope as NDJSON with its offset. */
import type { EventEnvelope } from "../core/types.js";
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
