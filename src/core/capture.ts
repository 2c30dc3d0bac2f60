/*
 * Turns a captured request into the JSON envelope an inbox stream stores. The body
 * is text when it is valid UTF-8 (so it reads naturally) and base64 otherwise; both
 * decode back to the exact bytes received.
 */
import { isUtf8 } from "node:buffer";
import type { CapturedRequest, EventEnvelope } from "./types.js";

export function headerPairs(rawHeaders: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return pairs;
}

export function findContentType(headers: Array<[string, string]>): string | null {
  for (const [name, value] of headers) {
    if (name.toLowerCase() === "content-type") return value;
  }
  return null;
}

export function buildEnvelope(request: CapturedRequest, seq: number): EventEnvelope {
  const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
  const utf8 = isUtf8(body);
  const headers = headerPairs(request.rawHeaders);
  return {
    seq,
    id: request.id,
    receivedAt: new Date(request.receivedAt).toISOString(),
    method: request.method,
    path: request.path,
    query: request.query,
    headers,
    contentType: findContentType(headers),
    size: body.length,
    body: utf8 ? body.toString("utf8") : body.toString("base64"),
    bodyEncoding: utf8 ? "utf8" : "base64",
    remoteAddr: request.remoteAddr,
  };
}

export function encodeEnvelope(request: CapturedRequest, seq: number): Buffer {
  return Buffer.from(JSON.stringify(buildEnvelope(request, seq)), "utf8");
}

export function decodeEnvelopeBody(envelope: Pick<EventEnvelope, "body" | "bodyEncoding">): Buffer {
  return Buffer.from(envelope.body, envelope.bodyEncoding === "utf8" ? "utf8" : "base64");
}
