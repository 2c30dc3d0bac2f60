/*
 * Reconciliation sources: what an admin configures per inbox (the definition, with
 * its credentials, kept server-side only) and what the runner remembers between
 * runs (the state, which the API shows as the source's status).
 */

export type SourceKind = "github" | "stripe" | "poll" | "imap";

/** Which GitHub webhook's deliveries to list. */
export type GithubHook =
  | { type: "repository"; owner: string; repo: string; hookId: number }
  | { type: "organization"; org: string; hookId: number }
  /** appId: the App's numeric id or its client id (the JWT's iss). */
  | { type: "app"; appId: string };

/**
 * append: fetch each missing delivery and append its recorded request;
 * redeliver: ask GitHub to send it again (original bytes, so the signature verifies).
 */
export type GithubMode = "append" | "redeliver";

export type SourceConfig =
  { kind: "github"; hook: GithubHook; mode: GithubMode } | { kind: "stripe" } | { kind: "poll"; url: string } | ImapConfig;

/**
 * tls: TLS from the first byte (IMAPS, port 993); starttls: STARTTLS required (port 143);
 * plain: no TLS at all, only to a loopback host.
 */
export type ImapSecurity = "tls" | "starttls" | "plain";

/** What to do with a message that has no usable Message-ID (see docs/email.md). */
export type WithoutMessageId = "skip" | "append";

export interface ImapConfig {
  kind: "imap";
  host: string;
  port: number;
  security: ImapSecurity;
  user: string;
  mailbox: string;
  /** PEM certificate(s) to trust instead of the system's CAs (a private or self-signed server). */
  ca?: string;
  withoutMessageId: WithoutMessageId;
}

/** Secrets: stored in the records table, never returned by the API. */
export interface SourceCredentials {
  /** GitHub token (repository/organization hooks). */
  token?: string;
  /** GitHub App hook: the App's PEM private key; each request carries a JWT signed with it. */
  privateKey?: string;
  /** Stripe secret (or restricted) key. */
  secretKey?: string;
  /** Poll: headers sent with each GET (e.g. Authorization). */
  headers?: Record<string, string>;
  /** IMAP: the mailbox user's password. */
  password?: string;
}

export interface SourceDefinition {
  id: string;
  inboxId: string;
  config: SourceConfig;
  credentials: SourceCredentials;
  intervalSeconds: number;
  timeoutMs: number;
  createdAt: number;
}

/** The outcome of one run, as the API shows it. */
export interface RunReport {
  startedAt: number;
  finishedAt: number;
  /** Items the provider listed (deliveries, events; 1 for a poll). */
  listed: number;
  /** Listed items the inbox did not have. */
  missing: number;
  /** Events appended (or, in redeliver mode, redeliveries requested). */
  appended: number;
  /** False when the run stopped at its cap (Stripe); the next run continues from the cursor. */
  complete?: boolean;
  /** IMAP: listed messages not appended on purpose (no Message-ID, or over the inbox's size limit). */
  skipped?: number;
  error: string | null;
}

/** An event a Stripe cursor stands on. */
export interface StripeEventRef {
  id: string;
  /** Its `created` (s). */
  created: number;
}

/** Stripe: `after`, the newest event reconciled; `before`, how far a search for the oldest has got. */
export interface StripeCursor {
  after?: StripeEventRef;
  before?: StripeEventRef;
}

export interface SourceState {
  lastRun: RunReport | null;
  /** When the runner will run it next (ms); a rate limit or a back-off pushes it out. */
  nextRunAt: number;
  /** Consecutive failed runs (0 after a good one), for the back-off. */
  failures: number;
  /** The last few failed runs, newest last, so a passing problem can still be seen. */
  recentErrors?: Array<{ at: number; error: string }>;
  /** The provider asked for nothing before this (ms); "run now" waits for it too. */
  rateLimitedUntil?: number;
  /** Stripe: where the next run continues (see stripe.ts). */
  stripeCursor?: StripeCursor;
  /** Poll: sha256 (hex) of the body of the last appended event. */
  lastHash?: string;
  /** GitHub redeliver mode: guid -> when it was last asked for (ms). */
  redeliveries?: Record<string, number>;
  /** IMAP: the mailbox's UIDVALIDITY (decimal) that imapLastUid belongs to. */
  imapUidValidity?: string;
  /** IMAP: every UID up to this one has been looked at; later runs fetch only higher UIDs. */
  imapLastUid?: number;
}

/** What a run adds to the state besides its report. */
export type StateChanges = Pick<SourceState, "stripeCursor" | "lastHash" | "redeliveries" | "imapUidValidity" | "imapLastUid">;
