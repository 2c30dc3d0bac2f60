/*
 * The model of tailhook, in one place.
 *
 * Glossary
 * - stream:   an append-only, ordered list of messages numbered 1, 2, 3… without gaps.
 * - seq:      a message's number inside its stream.
 * - offset:   an opaque, sortable string naming the position after a message
 *             (see offsets.ts); "-1" is the start, "now" the tail.
 * - inbox:    a stream whose writer is the webhook capture; it has a secret id,
 *             a token and settings.
 * - event:    one captured HTTP request, stored as one message of its inbox's stream
 *             (as a JSON envelope, see capture.ts).
 * - retained: messages may be pruned from the head of a stream (retention); the
 *             first retained seq moves forward and older offsets answer "gone".
 */

/** One captured request, before it has a place in a stream. */
export interface CapturedRequest {
  id: string;
  receivedAt: number;
  method: string;
  path: string;
  query: string;
  /** Raw headers as node gives them (name, value, name, value…): order, case and duplicates kept. */
  rawHeaders: string[];
  remoteAddr: string;
  body: Uint8Array;
  /** What tailhook learnt about the request besides its bytes (absent for a plain webhook). */
  annotations?: EventAnnotations;
}

/** The outcome of checking a request's signature against the inbox's verify settings. */
export interface VerificationVerdict {
  scheme: string;
  ok: boolean;
  /** Why it failed (or which secret matched, never the secret itself). */
  reason?: string;
}

/**
 * Where an event came from: a webhook delivery (the default), a reconciliation source
 * that found it in the sender's own record, or a poll of a full-state URL.
 */
export type EventOrigin = "webhook" | "reconciled" | "poll";

export interface EventAnnotations {
  verification?: VerificationVerdict;
  origin?: EventOrigin;
  /** The source that appended it (reconciled and poll events). */
  source?: string;
  /** A mail event's envelope (see core/email-event.ts, docs/email.md). */
  email?: EmailEnvelope;
}

/**
 * How a mail event reached tailhook. For the SMTP door, the SMTP envelope; the IMAP
 * source knows no SMTP envelope: mailFrom and rcptTo are "" (unknown) and `imap` says
 * where the message was found.
 */
export interface EmailEnvelope {
  /** MAIL FROM; "" for the null sender (bounces). */
  mailFrom: string;
  /** The RCPT TO address that named this inbox (one event per inbox). */
  rcptTo: string;
  /** The name the client gave with HELO/EHLO. */
  helo?: string;
  remoteAddress?: string;
  /** Whether the SMTP session was encrypted (STARTTLS) when DATA was sent. */
  tls?: boolean;
  /** The AUTH user, when the client authenticated. */
  authUser?: string;
  /** Set by the IMAP reconciliation source: the mailbox and UID the message was read from. */
  imap?: ImapOrigin;
}

export interface ImapOrigin {
  mailbox: string;
  uid: number;
  /** The mailbox's UIDVALIDITY (a decimal string: it is a 32-bit unsigned number). */
  uidValidity: string;
  /** The message's INTERNALDATE (ISO 8601), when the server gave one. */
  internalDate?: string;
}

/** The JSON message an inbox stream holds for each event. */
export interface EventEnvelope {
  seq: number;
  id: string;
  receivedAt: string;
  method: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  contentType: string | null;
  size: number;
  body: string;
  bodyEncoding: "utf8" | "base64";
  remoteAddr: string;
  /** Present when the inbox verifies signatures. */
  verification?: VerificationVerdict;
  /** Absent for an ordinary webhook delivery. */
  origin?: EventOrigin;
  source?: string;
  /** Mail events only. */
  email?: EmailEnvelope;
}

export interface InboxResponseSettings {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RetentionSettings {
  /** Keep at most this many of the newest events. */
  maxEvents?: number;
  /** Drop events older than this. */
  maxAgeSeconds?: number;
  /** Compaction: superseded events (an entity's earlier events) may go; needs keyFrame. */
  compact?: boolean;
  /** With compact: the horizon trails the tail by this many events (core/compaction.ts; default 1000). */
  compactLag?: number;
}

export interface InboxSettings {
  /** Largest accepted body; the server default applies when absent. */
  maxBodyBytes?: number;
  /** The reply a sender gets once its event is stored; a JSON ack when absent. */
  response?: InboxResponseSettings;
  retention?: RetentionSettings;
  dedupe?: import("./dedupe.js").DedupeSettings;
  /** Signature verification (secrets never leave the server). */
  verify?: import("./verify/settings.js").VerifySettings;
  /** Seconds within which an event is expected; past that the inbox is `silent` (core/silence.ts). */
  expectEvery?: number;
  /** Where an event's entity lives, for snapshots of the inbox's stream (docs/key-frames.md). */
  keyFrame?: import("./inbox-keys.js").KeyFrameSetting;
}

export interface Inbox {
  id: string;
  name: string | null;
  streamId: number;
  settings: InboxSettings;
  createdAt: number;
}

/** An inbox with the hash of its read token, as the store keeps it. */
export interface StoredInbox extends Inbox {
  tokenHash: Buffer;
}

export interface StreamInfo {
  id: number;
  name: string;
  contentType: string;
  /** seq of the last message; 0 when the stream has none yet. */
  tailSeq: number;
  /** seq of the first retained message; tailSeq + 1 when nothing is retained. */
  firstSeq: number;
  closed: boolean;
  createdAt: number;
  /** Deleted while forks still read its data: direct access answers 410, the name stays taken. */
  softDeleted: boolean;
  /** Sliding time-to-live: the stream expires this long after its last read or write. */
  ttlSeconds: number | null;
  /** Absolute expiry (ms since the epoch). */
  expiresAt: number | null;
  /** Last read or write as committed (ms); reads since may only be known in memory. */
  touchedAt: number | null;
  /** For a fork: the stream whose messages 1..forkSeq it reads as its own. */
  forkedFrom: number | null;
  forkSeq: number | null;
  /** Set for a state stream (created with `Stream-State: v1`, see docs/key-frames.md). */
  stateProtocol: import("./state/state-messages.js").StateProtocol | null;
  /** An inbox stream's key frame definition (core/inbox-keys.ts, JSON), null without one. */
  keyFrame: string | null;
  /** Counts keyFrame changes: each resets the index, and a snapshot cursor names the one it read. */
  keyFrameVersion: number;
  /** The key-frame horizon H (core/compaction.ts): compaction may have removed messages at or before it; 0 = never compacted. */
  horizonSeq: number;
  /** The compaction policy (core/compaction.ts), null when the stream is not compacted. */
  compaction: import("./compaction.js").CompactionPolicy | null;
}

/** A named, server-side cursor on a stream: everything up to committedSeq is done. */
export interface Consumer {
  streamId: number;
  name: string;
  committedSeq: number;
  createdAt: number;
  lastAckAt: number | null;
  lastSeenAt: number | null;
}

/**
 * A message as stored. For an inbox event `data` is the raw body and `meta` the rest
 * of the captured request (see capture.ts); the envelope is built when it is read,
 * which keeps JSON and base64 work off the ingest path.
 */
export interface StoredMessage {
  seq: number;
  createdAt: number;
  data: Buffer;
  meta: string | null;
}
