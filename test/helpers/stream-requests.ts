/* General-stream requests for tests below HTTP (the Store's `general` port): plain text, no TTL, no fork, unless told. */
import type { AppendRequest, CreateStreamRequest } from "../../dist/core/streams.js";

export function createRequest(name: string, extra: Partial<CreateStreamRequest> = {}): CreateStreamRequest {
  return {
    name,
    contentType: "text/plain",
    ttlSeconds: null,
    expiresAt: null,
    closed: false,
    messages: [],
    fork: null,
    stateProtocol: null,
    ...extra,
  };
}

export function appendRequest(name: string, data: string[], extra: Partial<AppendRequest> = {}): AppendRequest {
  return {
    name,
    contentType: "text/plain",
    messages: data.map((text) => Buffer.from(text)),
    close: false,
    streamSeq: null,
    producer: null,
    ...extra,
  };
}
