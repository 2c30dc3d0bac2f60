/*
 * Server-Sent Events framing for Durable Streams reads: a `data` event per page (a
 * JSON array, one message per line) followed by a `control` event with the offset to
 * resume from. Writes respect backpressure so a slow reader costs one page of memory.
 * The headers and the close signal are shared by every SSE endpoint (streams, smee).
 */
import type { ServerResponse } from "node:http";

export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
};

export interface ControlEvent {
  streamNextOffset: string;
  streamCursor?: string;
  upToDate?: boolean;
  streamClosed?: boolean;
}

/**
 * One SSE field line. "data:" takes the value as it is, except that readers drop one
 * leading space, so a value that starts with a space gets one extra.
 */
function field(name: string, value: string): string {
  return `${name}:${value.startsWith(" ") ? " " : ""}${value}\n`;
}

/** `data:` fields carrying `text`, one per line of it. */
export function sseDataLines(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => field("data", line))
    .join("");
}

/** One `data` event carrying `text`. */
export function sseDataEvent(text: string): string {
  return `event: data\n${sseDataLines(text)}\n`;
}

export function controlEvent(control: ControlEvent): string {
  return `event: control\n${field("data", JSON.stringify(control))}\n`;
}

export const KEEP_ALIVE = ": keep-alive\n\n";

/** Writes and, when the socket buffer is full, waits until it drains or closes. */
export function writeAndDrain(res: ServerResponse, text: string): Promise<void> {
  if (res.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Aborts when the client goes away before its reply is complete. */
export function abortOnClose(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once("close", () => controller.abort());
  return controller.signal;
}
