/*
 * IMAP: log in to the mailbox the vendor's mail also reaches, open it read-only
 * (EXAMINE: nothing is ever flagged, moved or deleted), list the messages with a UID
 * above the last one seen (all of them again when UIDVALIDITY changed), and append
 * every message whose Message-ID the inbox does not have, as a mail event with its
 * raw bytes, origin "reconciled". The key is the same Message-ID the SMTP door
 * dedupes on, so a message that came by SMTP is never doubled. See docs/email.md.
 */
import { createHash } from "node:crypto";
import { ImapFlow, type FetchMessageObject } from "imapflow";
import { dedupeKeyOf, MAX_DEDUPE_KEY_LENGTH } from "../core/dedupe.js";
import { emailEvent } from "../core/email-event.js";
import { emailHeaderValue } from "../core/email-message.js";
import { SourceRunError } from "./provider-http.js";
import { appendOnce, lookbackStart, type RunContext } from "./run-context.js";
import type { ImapConfig } from "./types.js";

/** At most this many messages are looked at per run; the rest come next run (the UID cursor says where). */
const MAX_MESSAGES_PER_RUN = 1000;
const DAY_MS = 24 * 3600_000;

function client(config: ImapConfig, password: string, timeoutMs: number): ImapFlow {
  return new ImapFlow({
    host: config.host,
    port: config.port,
    secure: config.security === "tls",
    // STARTTLS is required when configured (no silent fall-back to cleartext), never tried otherwise.
    doSTARTTLS: config.security === "starttls" ? true : config.security === "plain" ? false : undefined,
    ...(config.ca !== undefined ? { tls: { ca: config.ca } } : {}),
    auth: { user: config.user, pass: password },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
}

/** The server's words for a failure (never the password: imapflow does not echo it). */
function describe(error: unknown, what: string): SourceRunError {
  if (error instanceof SourceRunError) return error;
  const record = (error ?? {}) as { message?: string; responseText?: string; authenticationFailed?: boolean; code?: string };
  if (record.authenticationFailed) return new SourceRunError(`IMAP login failed: ${record.responseText ?? "authentication refused"}`);
  const detail = record.responseText ?? record.message ?? String(error);
  return new SourceRunError(`IMAP ${what}: ${detail}${record.code ? ` (${record.code})` : ""}`);
}

/** The Message-ID as the dedupe preset reads it, or undefined when the message has none usable. */
function messageIdOf(headers: Buffer | undefined): string | undefined {
  if (!headers) return undefined;
  const value = emailHeaderValue(headers, "message-id");
  return value && value.length <= MAX_DEDUPE_KEY_LENGTH ? value : undefined;
}

function internalDateOf(message: FetchMessageObject): number | undefined {
  const date = message.internalDate;
  if (date === undefined) return undefined;
  const ms = (date instanceof Date ? date : new Date(date)).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

export async function runImap(ctx: RunContext): Promise<void> {
  const config = ctx.source.config;
  if (config.kind !== "imap") throw new Error("not an imap source");
  const dedupe = ctx.inbox.settings.dedupe;
  if (dedupe?.emailHeader !== "message-id")
    throw new SourceRunError('the inbox\'s settings.dedupe is no longer the "message-id" preset; reconciling would double delivered mail');
  const since = lookbackStart(ctx);
  const sizeLimit = ctx.inbox.settings.maxBodyBytes ?? ctx.maxBodyBytes;
  const imap = client(config, ctx.source.credentials.password ?? "", ctx.source.timeoutMs);
  // A socket error after connect is reported here too; without a listener it would crash the process.
  let socketError: unknown;
  imap.on("error", (error: unknown) => {
    socketError = error;
  });
  try {
    try {
      await imap.connect();
    } catch (error) {
      throw describe(error, `connecting to ${config.host}:${config.port}`);
    }
    let lock;
    try {
      lock = await imap.getMailboxLock(config.mailbox, { readOnly: true });
    } catch (error) {
      throw describe(error, `opening mailbox ${config.mailbox}`);
    }
    try {
      const mailbox = imap.mailbox;
      if (!mailbox) throw new SourceRunError(`IMAP: mailbox ${config.mailbox} is not open`);
      const uidValidity = mailbox.uidValidity.toString();
      // A new UIDVALIDITY means the old UIDs mean nothing: look at everything again (dedupe keeps it harmless).
      const after = ctx.state.imapUidValidity === uidValidity ? (ctx.state.imapLastUid ?? 0) : 0;
      ctx.changes.imapUidValidity = uidValidity;
      ctx.changes.imapLastUid = after;
      await reconcile(ctx, imap, { uidValidity, after, since, sizeLimit, config, key: dedupe });
    } finally {
      lock.release();
    }
  } catch (error) {
    throw describe(socketError ?? error, `reading ${config.mailbox}`);
  } finally {
    await imap.logout().catch(() => imap.close());
  }
}

interface Pass {
  uidValidity: string;
  after: number;
  since: number;
  sizeLimit: number;
  config: ImapConfig;
  key: NonNullable<RunContext["inbox"]["settings"]["dedupe"]>;
}

async function reconcile(ctx: RunContext, imap: ImapFlow, pass: Pass): Promise<void> {
  const { config, uidValidity, since } = pass;
  // SINCE is a date (no time, the server's zone): a day's margin, then the exact cut on INTERNALDATE below.
  const found = await imap.search({ uid: `${pass.after + 1}:*`, since: new Date(since - DAY_MS) }, { uid: true });
  if (found === false || found === undefined) throw new SourceRunError(`IMAP: searching ${config.mailbox} failed`);
  // "n:*" also matches the highest UID when it is below n.
  const uids = found
    .filter((uid) => uid > pass.after)
    .sort((a, b) => a - b)
    .slice(0, MAX_MESSAGES_PER_RUN);
  if (uids.length === 0) return;
  const listed = await imap.fetchAll(uids, { uid: true, internalDate: true, size: true, headers: ["message-id"] }, { uid: true });
  listed.sort((a, b) => a.uid - b.uid);
  const cursor = (uid: number) => {
    ctx.changes.imapLastUid = Math.max(ctx.changes.imapLastUid ?? 0, uid);
  };
  ctx.counts.skipped = 0;
  for (const message of listed) {
    const internalDate = internalDateOf(message);
    // Older than the dedupe window: its SMTP copy's key may be forgotten, so a copy could double it.
    if (internalDate !== undefined && internalDate < since) {
      cursor(message.uid);
      continue;
    }
    ctx.counts.listed += 1;
    let key = messageIdOf(message.headers);
    if (key === undefined && config.withoutMessageId === "skip") {
      ctx.counts.skipped += 1;
      cursor(message.uid);
      continue;
    }
    if (key !== undefined && (await ctx.store.findDelivery(ctx.inbox.streamId, key))) {
      cursor(message.uid);
      continue;
    }
    ctx.counts.missing += 1;
    if ((message.size ?? 0) > pass.sizeLimit) {
      // The SMTP door refuses such a message (552); the inbox does not take it this way either.
      ctx.counts.skipped += 1;
      cursor(message.uid);
      continue;
    }
    const fetched = await imap.fetchOne(String(message.uid), { uid: true, source: true }, { uid: true });
    if (!fetched || !fetched.source) throw new SourceRunError(`IMAP: message UID ${message.uid} could not be fetched`);
    if (fetched.source.length > pass.sizeLimit) {
      ctx.counts.skipped += 1;
      cursor(message.uid);
      continue;
    }
    const event = emailEvent({
      raw: fetched.source,
      envelope: {
        mailFrom: "",
        rcptTo: "",
        imap: {
          mailbox: config.mailbox,
          uid: message.uid,
          uidValidity,
          ...(internalDate !== undefined ? { internalDate: new Date(internalDate).toISOString() } : {}),
        },
      },
      origin: "reconciled",
      source: ctx.source.id,
    });
    if (key === undefined) {
      // withoutMessageId "append": keyed on the bytes, so a re-list (new UIDVALIDITY) does not append it twice.
      key = `sha256:${createHash("sha256").update(fetched.source).digest("hex")}`;
      if (await ctx.store.findDelivery(ctx.inbox.streamId, key)) {
        ctx.counts.missing -= 1;
        cursor(message.uid);
        continue;
      }
    } else if (dedupeKeyOf(pass.key, event) !== key) {
      throw new SourceRunError(`IMAP: message UID ${message.uid} changed between listing and fetching`);
    }
    await appendOnce(ctx, event, key);
    cursor(message.uid);
  }
}
