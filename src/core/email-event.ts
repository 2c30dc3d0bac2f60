/*
 * The shape of a mail event: how one received email (its raw bytes and the SMTP or
 * mailbox envelope it came with) becomes a CapturedRequest, so that it is stored,
 * numbered, tailed, forwarded and retained exactly like a webhook. Shared by the SMTP
 * door (src/email/) and the IMAP reconciliation source. See docs/email.md.
 */
import { newEventId } from "./ids.js";
import type { CapturedRequest, EmailEnvelope, EventAnnotations } from "./types.js";

export const EMAIL_METHOD = "SMTP";
export const EMAIL_CONTENT_TYPE = "message/rfc822";

/** `<inbox-id>` or `<inbox-id>+<tag>` at any domain. */
export interface EmailRecipient {
  inboxId: string;
  /** The part after "+" in the local part; undefined without one. */
  tag: string | undefined;
}

/**
 * Splits a recipient address into inbox id and tag. The local part is taken as is
 * (case kept: inbox ids are case-sensitive); a quoted local part or one without "@"
 * is not an inbox address.
 */
export function parseEmailRecipient(address: string): EmailRecipient | undefined {
  const at = address.lastIndexOf("@");
  if (at <= 0) return undefined;
  const local = address.slice(0, at);
  if (local.startsWith('"')) return undefined;
  const plus = local.indexOf("+");
  return plus === -1 ? { inboxId: local, tag: undefined } : { inboxId: local.slice(0, plus), tag: local.slice(plus + 1) };
}

export interface EmailEventInput {
  /** The message exactly as received (for SMTP: the dot-unstuffed DATA content, up to and including the last CRLF). */
  raw: Uint8Array;
  envelope: EmailEnvelope;
  receivedAt?: number;
  /** Set by a reconciliation source; absent for mail that came through the SMTP door. */
  origin?: EventAnnotations["origin"];
  source?: string;
}

/**
 * The CapturedRequest of a mail event: method "SMTP", path "/" + the recipient's tag
 * (percent-encoded; "/" without one), no query, the single header `Content-Type: message/rfc822`, the
 * raw message as body, and the envelope under `annotations.email`.
 */
export function emailEvent(input: EmailEventInput): CapturedRequest {
  const tag = parseEmailRecipient(input.envelope.rcptTo)?.tag;
  const annotations: EventAnnotations = { email: input.envelope };
  if (input.origin) annotations.origin = input.origin;
  if (input.source) annotations.source = input.source;
  return {
    id: newEventId(),
    receivedAt: input.receivedAt ?? Date.now(),
    method: EMAIL_METHOD,
    path: tag === undefined ? "/" : `/${encodeURIComponent(tag)}`,
    query: "",
    rawHeaders: ["Content-Type", EMAIL_CONTENT_TYPE],
    remoteAddr: input.envelope.remoteAddress ?? "",
    body: input.raw,
    annotations,
  };
}
