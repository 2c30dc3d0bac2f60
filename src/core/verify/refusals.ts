/*
 * Requests refused by an enforcing inbox, for the admin's debugging: a count per inbox
 * and the last few, in this process's memory only (never in the stream, gone on
 * restart), bounded in entries per inbox and in inboxes. Credentials-looking header
 * values are masked; bodies are kept only when small.
 */
import { isUtf8 } from "node:buffer";
import type { CapturedRequest } from "../types.js";

export interface RefusedRequest {
  at: string;
  reason: string;
  method: string;
  path: string;
  size: number;
  headers: Array<[string, string]>;
  /** Present only for a body of at most MAX_BODY_BYTES. */
  body?: string;
  bodyEncoding?: "utf8" | "base64";
}

export interface RefusalView {
  refused: number;
  recent: RefusedRequest[];
}

const PER_INBOX = 20;
const MAX_INBOXES = 1000;
const MAX_BODY_BYTES = 4096;
/** Header names whose values are credentials rather than evidence. */
const SECRET_LOOKING = /(^|-)(authorization|cookie|set-cookie|token|secret|password|passwd|api-?key|auth)($|-)/i;

function maskedHeaders(rawHeaders: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    pairs.push([name, SECRET_LOOKING.test(name) ? "(masked)" : rawHeaders[i + 1]!]);
  }
  return pairs;
}

export class RefusalLog {
  private readonly inboxes = new Map<string, { refused: number; recent: RefusedRequest[] }>();

  note(inboxId: string, request: CapturedRequest, reason: string): void {
    let entry = this.inboxes.get(inboxId);
    if (!entry) {
      // Oldest inbox first out: a Map iterates in insertion order.
      if (this.inboxes.size >= MAX_INBOXES) this.inboxes.delete(this.inboxes.keys().next().value!);
      entry = { refused: 0, recent: [] };
      this.inboxes.set(inboxId, entry);
    }
    entry.refused++;
    const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    const refused: RefusedRequest = {
      at: new Date(request.receivedAt).toISOString(),
      reason,
      method: request.method,
      path: request.path,
      size: body.length,
      headers: maskedHeaders(request.rawHeaders),
    };
    if (body.length <= MAX_BODY_BYTES) {
      const utf8 = isUtf8(body);
      refused.body = body.toString(utf8 ? "utf8" : "base64");
      refused.bodyEncoding = utf8 ? "utf8" : "base64";
    }
    entry.recent.push(refused);
    if (entry.recent.length > PER_INBOX) entry.recent.shift();
  }

  /** Newest first. */
  view(inboxId: string): RefusalView {
    const entry = this.inboxes.get(inboxId);
    return { refused: entry?.refused ?? 0, recent: entry ? [...entry.recent].reverse() : [] };
  }
}
