/* Small HTTP helpers for black-box tests: raw bytes on a socket, and paging a stream. */
import { parseSseBlocks } from "./sse-reader.js";
import { connect } from "node:net";
import type { EventEnvelope } from "../../dist/core/types.js";

export interface RawResponse {
  status: number;
  head: string;
  body: Buffer;
}

/** Sends exact bytes (header case, duplicates, binary) and reads until the server closes. */
export function rawRequest(baseUrl: string, bytes: Buffer): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      const head = all.subarray(0, split).toString("latin1");
      resolve({ status: Number(head.split(" ")[1]), head, body: all.subarray(split + 4) });
    });
  });
}

export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

export type Envelope = EventEnvelope;

/** Reads a whole stream by catch-up pages, following Stream-Next-Offset. */
export async function readAll(streamUrl: string, token: string, from = "-1"): Promise<{ events: Envelope[]; next: string }> {
  const events: Envelope[] = [];
  let offset = from;
  for (;;) {
    const response = await fetch(`${streamUrl}?offset=${offset}`, { headers: bearer(token) });
    if (response.status !== 200) throw new Error(`read ${offset}: ${response.status} ${await response.text()}`);
    events.push(...((await response.json()) as Envelope[]));
    offset = response.headers.get("stream-next-offset")!;
    if (response.headers.get("stream-up-to-date") === "true") return { events, next: offset };
  }
}

export function bodyBytes(event: Envelope): Buffer {
  return Buffer.from(event.body, event.bodyEncoding === "utf8" ? "utf8" : "base64");
}

/** Parses a complete SSE text into events. */
export function parseSse(text: string): Array<{ event: string; data: string }> {
  return parseSseBlocks(text).map(({ event, data }) => ({ event, data }));
}
