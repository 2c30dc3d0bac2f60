/*
 * Reading an SSE response in the bench's readers: events split at blank lines, each
 * with its type and data and the CLOCK_MONOTONIC time (stats.monotonicMs) its last
 * chunk arrived, so latencies compare across processes.
 */
import type { IncomingMessage } from "node:http";
import { monotonicMs } from "./stats.js";

export interface SseEvent {
  type: string;
  data: string;
}

export function parseSseEvent(block: string): SseEvent {
  let type = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  return { type, data: data.join("\n") };
}

/** Calls onEvent for every event of the response as it arrives. */
export function onSseEvents(res: IncomingMessage, onEvent: (event: SseEvent, at: number) => void): void {
  res.setEncoding("utf8");
  let buffer = "";
  res.on("data", (chunk: string) => {
    const at = monotonicMs();
    buffer += chunk;
    for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      onEvent(parseSseEvent(block), at);
    }
  });
}
