/*
 * A captured webhook request, for tests that append straight through a Store.
 */
import type { CapturedRequest } from "../../dist/core/types.js";

export function capturedRequest(id: string, body: string): CapturedRequest {
  return {
    id,
    receivedAt: Date.now(),
    method: "POST",
    path: "/h/x",
    query: "",
    rawHeaders: ["content-type", "application/json"],
    remoteAddr: "127.0.0.1",
    body: Buffer.from(body),
  };
}
