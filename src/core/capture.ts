/*
 * Turns a captured request into the JSON envelope an inbox stream stores. The body
 * is text when it is valid UTF-8 (so it reads naturally) and base64 otherwise; both
 * decode back to the exact bytes received.
 */
import { isUtf8 } from "node:buffer";
import type { CapturedRequest, EventAnnotations, EventEnvelope, StoredMessage, VerificationVerdict } from "./types.js";

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

/**
 * What an event keeps besides its body: `[id, method, path, query, remoteAddr, rawHeaders]`,
 * plus its annotations as a seventh element only when there are any (older events and
 * plain webhooks have six).
 */
type EventMeta = [string, string, string, string, string, string[], EventAnnotations?];

export function encodeEventMeta(request: CapturedRequest): string {
  return encodeEventMetaWith(request, encodeAnnotations(request.annotations));
}

/** The annotations as the meta's seventh element, or undefined when there are none. */
export function encodeAnnotations(annotations: EventAnnotations | undefined): string | undefined {
  return annotations && Object.keys(annotations).length > 0 ? JSON.stringify(annotations) : undefined;
}

// An ok verdict is one of a few (scheme, matched secret) texts, the same for every request.
const okVerdictJson = new Map<string, string>();

/**
 * The annotations of a checked request as JSON: its own (already encoded, if any) and
 * the verdict. An ok verdict's text is encoded once, not per request.
 */
export function withVerdictJson(annotationsJson: string | undefined, verdict: VerificationVerdict): string {
  let own = verdict.ok ? okVerdictJson.get(`${verdict.scheme}\n${verdict.reason}`) : undefined;
  if (own === undefined) {
    own = JSON.stringify({ verification: verdict } satisfies EventAnnotations);
    if (verdict.ok && okVerdictJson.size < 1000) okVerdictJson.set(`${verdict.scheme}\n${verdict.reason}`, own);
  }
  return annotationsJson === undefined ? own : `${annotationsJson.slice(0, -1)},${own.slice(1)}`;
}

/**
 * The meta with the annotations already encoded (encodeAnnotations): the SQLite store
 * encodes them on the main thread, because one string crosses to its writer thread
 * far cheaper than nested objects do (a verified webhook's verdict, measured in
 * docs/benchmarks.md "Signature verification").
 */
export function encodeEventMetaWith(request: Omit<CapturedRequest, "annotations">, annotationsJson: string | undefined): string {
  const meta: EventMeta = [request.id, request.method, request.path, request.query, request.remoteAddr, request.rawHeaders];
  const plain = JSON.stringify(meta);
  return annotationsJson === undefined ? plain : `${plain.slice(0, -1)},${annotationsJson}]`;
}

export function buildEnvelope(message: StoredMessage): EventEnvelope {
  const [id, method, path, query, remoteAddr, rawHeaders, annotations] = JSON.parse(message.meta ?? "null") as EventMeta;
  const body = message.data;
  const utf8 = isUtf8(body);
  const headers = headerPairs(rawHeaders);
  return {
    seq: message.seq,
    id,
    receivedAt: new Date(message.createdAt).toISOString(),
    method,
    path,
    query,
    headers,
    contentType: findContentType(headers),
    size: body.length,
    body: utf8 ? body.toString("utf8") : body.toString("base64"),
    bodyEncoding: utf8 ? "utf8" : "base64",
    remoteAddr,
    ...annotations,
  };
}

/** The JSON text a reader gets for a message: the envelope for an event, else the stored JSON. */
export function messageJson(message: StoredMessage): string {
  return message.meta === null ? message.data.toString("utf8") : JSON.stringify(buildEnvelope(message));
}

export function decodeEnvelopeBody(envelope: Pick<EventEnvelope, "body" | "bodyEncoding">): Buffer {
  return Buffer.from(envelope.body, envelope.bodyEncoding === "utf8" ? "utf8" : "base64");
}
