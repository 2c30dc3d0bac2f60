/*
 * How stored messages become a response body. A JSON stream answers a JSON array of
 * its messages; any other stream answers the bytes of its messages back to back. In
 * SSE, text and JSON travel as text and everything else as base64 (protocol §5.8).
 */
import { messageJson } from "../../core/capture.js";
import type { StoredMessage, StreamInfo } from "../../core/types.js";
import { mediaType } from "../../core/streams.js";
import { sseDataEvent, sseDataLines } from "../sse.js";

export function isJsonStream(stream: Pick<StreamInfo, "contentType">): boolean {
  return mediaType(stream.contentType) === "application/json";
}

/** Binary streams need base64 in SSE; text and JSON can be sent as they are. */
export function isBinaryForSse(stream: Pick<StreamInfo, "contentType">): boolean {
  return !isJsonStream(stream) && !mediaType(stream.contentType).startsWith("text/");
}

export function emptyBody(stream: StreamInfo): string {
  return isJsonStream(stream) ? "[]" : "";
}

/** A Buffer, so the reply's Content-Type stays exactly the stream's (no charset added). */
export function responseBody(stream: StreamInfo, messages: StoredMessage[]): Buffer {
  if (isJsonStream(stream)) return Buffer.from(`[${messages.map(messageJson).join(",")}]`);
  return Buffer.concat(messages.map((message) => message.data));
}

/**
 * Formatted events by page: live readers at one position share one page object
 * (live/shared-reads.ts), so a commit followed by 10,000 readers is formatted once,
 * not once per reader. A page's messages never change, and belong to one stream.
 */
const sseEvents = new WeakMap<StoredMessage[], string>();

/**
 * One SSE `data` event for these messages: a JSON array with one message per line for
 * a JSON stream (a message that spans lines gets a `data:` field per line), else the
 * bytes as text or base64.
 */
export function sseDataEventFor(stream: StreamInfo, messages: StoredMessage[]): string {
  let event = sseEvents.get(messages);
  if (event === undefined) sseEvents.set(messages, (event = formatSseDataEvent(stream, messages)));
  return event;
}

function formatSseDataEvent(stream: StreamInfo, messages: StoredMessage[]): string {
  if (!isJsonStream(stream)) {
    const bytes = Buffer.concat(messages.map((message) => message.data));
    return sseDataEvent(isBinaryForSse(stream) ? bytes.toString("base64") : bytes.toString("utf8"));
  }
  let event = "event: data\ndata:[\n";
  messages.forEach((message, index) => {
    const json = messageJson(message) + (index < messages.length - 1 ? "," : "");
    // An event envelope is JSON.stringify output, which never holds a raw line break.
    event += message.meta === null && MULTI_LINE.test(json) ? sseDataLines(json) : `data:${json}\n`;
  });
  return `${event}data:]\n\n`;
}

const MULTI_LINE = /[\r\n]/;
