/*
 * What a WebSocket reader receives, one JSON text frame per item (docs/http-api.md,
 * "WebSocket"). Inbox sockets (/v1/ws/inbox/<id>) keep their original "event" frames;
 * stream sockets (/v1/ws/stream/<name>) carry any stream: a JSON stream's message (or
 * an inbox's event envelope) as JSON, any other stream's message as a body with its
 * bodyEncoding, and snapshot pages as they come from LiveStreams.follow().
 */
import { messageJson } from "../../core/capture.js";
import { formatOffset, formatReadOffset } from "../../core/offsets.js";
import type { StoredMessage, StreamInfo } from "../../core/types.js";
import { isBinaryForSse, isJsonStream } from "../protocol/bodies.js";

export interface FrameFormat {
  /** horizonSeq: the stream's key-frame horizon, which offsets inside the compacted log name. */
  message(message: StoredMessage, horizonSeq: number): string;
  /** One snapshot page; its messages are JSON already. */
  snapshot(messages: Buffer[], nextOffset: string, done: boolean, asOfSeq: number): string;
  upToDate(seq: number): string;
  /** Sent before the close when the stream was closed and read to its end; null: the close says it all. */
  closed(seq: number): string | null;
  /** `snapshot` is where a snapshot of the stream can be read, when it has key frames. */
  gone(earliestSeq: number, snapshot: string | null): string;
}

function goneFrame(earliestSeq: number, snapshot: string | null): string {
  return JSON.stringify({ type: "gone", earliestOffset: formatOffset(earliestSeq), ...(snapshot === null ? {} : { snapshot }) });
}

const upToDate = (seq: number) => `{"type":"up-to-date","offset":"${formatOffset(seq)}"}`;

export const INBOX_FRAMES: FrameFormat = {
  message: (message, horizonSeq) =>
    `{"type":"event","offset":"${formatReadOffset(message.seq, horizonSeq)}","event":${messageJson(message)}}`,
  snapshot: () => {
    throw new Error("inbox sockets have no snapshot mode; /v1/ws/stream/inbox/<id> has");
  },
  upToDate,
  closed: () => null,
  gone: goneFrame,
};

/** Frames of /v1/ws/stream/<name> for this stream's content type. */
export function streamFrames(stream: Pick<StreamInfo, "contentType">): FrameFormat {
  const json = isJsonStream(stream);
  const encoding = isBinaryForSse(stream) ? "base64" : "utf8";
  return {
    message: (message, horizonSeq) => {
      const offset = formatReadOffset(message.seq, horizonSeq);
      if (json) return `{"type":"message","offset":"${offset}","message":${messageJson(message)}}`;
      return JSON.stringify({ type: "message", offset, body: message.data.toString(encoding), bodyEncoding: encoding });
    },
    snapshot: (messages, nextOffset, done, asOfSeq) =>
      `{"type":"snapshot","offset":"${formatOffset(asOfSeq)}","nextOffset":${JSON.stringify(nextOffset)},"done":${done},"messages":[${messages.join(",")}]}`,
    upToDate,
    closed: (seq) => `{"type":"closed","offset":"${formatOffset(seq)}"}`,
    gone: goneFrame,
  };
}
