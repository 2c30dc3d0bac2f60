/*
 * The parsed view of a mail event (GET /api/inboxes/:id/events/:seq/email), computed
 * at read time from the stored raw message with mailparser: the stored bytes stay the
 * truth, and the parse costs nothing on ingest or on stream reads. Attachments are
 * described (name, type, size), never included.
 */
import type { AddressObject, EmailAddress } from "mailparser";

export interface MailAddress {
  name: string;
  address: string | null;
}

export interface ParsedEmailView {
  subject: string | null;
  from: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
  replyTo: MailAddress[];
  /** ISO 8601; null when the message has no (readable) Date header. */
  date: string | null;
  messageId: string | null;
  inReplyTo: string | null;
  text: string | null;
  html: string | null;
  attachments: Array<{ filename: string | null; contentType: string; size: number; contentId: string | null; disposition: string | null }>;
}

function flatten(entries: EmailAddress[]): MailAddress[] {
  return entries.flatMap((entry) => (entry.group ? flatten(entry.group) : [{ name: entry.name, address: entry.address ?? null }]));
}

function addresses(header: AddressObject | AddressObject[] | undefined): MailAddress[] {
  if (!header) return [];
  return (Array.isArray(header) ? header : [header]).flatMap((object) => flatten(object.value));
}

export async function parsedEmailView(raw: Buffer): Promise<ParsedEmailView> {
  // keepCidLinks: inline images stay cid: links instead of data: URIs carrying their bytes.
  // Loaded on the first email shown: mailparser's encoding tables cost ~25 MiB in every process.
  const { simpleParser } = await import("mailparser");
  const mail = await simpleParser(raw, { keepCidLinks: true, skipTextToHtml: true, skipImageLinks: true });
  const date = mail.headers.has("date") && mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date.toISOString() : null;
  return {
    subject: mail.subject ?? null,
    from: addresses(mail.from),
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    replyTo: addresses(mail.replyTo),
    date,
    messageId: mail.messageId ?? null,
    inReplyTo: mail.inReplyTo ?? null,
    text: mail.text ?? null,
    html: typeof mail.html === "string" ? mail.html : null,
    attachments: mail.attachments.map((attachment) => ({
      filename: attachment.filename ?? null,
      contentType: attachment.contentType,
      size: attachment.size,
      contentId: attachment.contentId ?? null,
      disposition: attachment.contentDisposition ?? null,
    })),
  };
}
