/*
 * One received message, committed to each inbox it was addressed to: every append goes
 * through store.appendEvent (the webhooks' group commit, fsynced), all at once so they
 * share a commit. What the SMTP client is told follows from the outcomes; see
 * docs/email.md ("What 250 promises").
 */
import { dedupeKeyOf, dedupeWindowMs } from "../core/dedupe.js";
import { emailEvent } from "../core/email-event.js";
import type { CapturedRequest, EmailEnvelope, StoredInbox } from "../core/types.js";
import type { AppendEventOptions, Store } from "../storage/store.js";

/** An accepted RCPT TO and the inbox it named. */
export interface MailRecipient {
  address: string;
  inbox: StoredInbox;
}

export type DeliveryOutcome =
  /** Committed (or a duplicate of a committed event) in every inbox that still exists. */
  | { reply: "accepted"; seqs: Array<{ inbox: string; seq: number; duplicate: boolean }> }
  /** Every inbox was deleted since RCPT TO: nothing to retry for. */
  | { reply: "no_inbox" }
  /** Storage failed for at least one inbox: a temporary failure, the sender retries. */
  | { reply: "storage_failed"; error: unknown; committed: number };

function dedupeOptions(inbox: StoredInbox, request: CapturedRequest): AppendEventOptions | undefined {
  const settings = inbox.settings.dedupe;
  if (!settings) return undefined;
  const key = dedupeKeyOf(settings, request);
  return key === undefined ? undefined : { dedupe: { key, windowMs: dedupeWindowMs(settings) } };
}

/** One event per inbox: a second recipient naming an inbox already listed (another +tag) adds nothing. */
export function oncePerInbox(recipients: MailRecipient[]): MailRecipient[] {
  const seen = new Set<string>();
  return recipients.filter(({ inbox }) => !seen.has(inbox.id) && seen.add(inbox.id));
}

export async function deliverMessage(
  store: Store,
  raw: Buffer,
  envelope: Omit<EmailEnvelope, "rcptTo">,
  recipients: MailRecipient[],
): Promise<DeliveryOutcome> {
  const receivedAt = Date.now();
  const attempts = await Promise.allSettled(
    recipients.map(({ address, inbox }) => {
      const request = emailEvent({ raw, envelope: { ...envelope, rcptTo: address }, receivedAt });
      return store.appendEvent(inbox.streamId, request, dedupeOptions(inbox, request)).then((result) => ({ inbox, result }));
    }),
  );
  const seqs: Array<{ inbox: string; seq: number; duplicate: boolean }> = [];
  let failure: unknown;
  for (const attempt of attempts) {
    if (attempt.status === "rejected") {
      failure ??= attempt.reason;
      continue;
    }
    const { inbox, result } = attempt.value;
    // Without `verify` an append is never refused: stored (or a duplicate), or no inbox.
    if (result.status === "appended" || result.status === "duplicate")
      seqs.push({ inbox: inbox.id, seq: result.seq, duplicate: result.status === "duplicate" });
  }
  if (failure !== undefined) return { reply: "storage_failed", error: failure, committed: seqs.length };
  if (seqs.length === 0) return { reply: "no_inbox" };
  return { reply: "accepted", seqs };
}
