/* How events look in a terminal: one line each, or the envelope as NDJSON. */
import type { EventEnvelope } from "../core/types.js";

const PREVIEW_CHARS = 80;

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatEventLine(event: EventEnvelope): string {
  const target = `${event.path || "/"}${event.query ? `?${event.query}` : ""}`;
  const preview =
    event.bodyEncoding === "utf8"
      ? event.body.slice(0, PREVIEW_CHARS).replace(/[\u0000-\u001f\u007f]+/g, " ")
      : `<binary ${formatSize(event.size)}>`;
  return [
    event.receivedAt,
    `#${event.seq}`,
    event.method,
    target,
    event.contentType ?? "-",
    formatSize(event.size),
    preview + (event.bodyEncoding === "utf8" && event.body.length > PREVIEW_CHARS ? "…" : ""),
  ].join("  ");
}

export function formatEventJson(event: EventEnvelope): string {
  return JSON.stringify(event);
}
