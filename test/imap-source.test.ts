/*
 * The IMAP reconciliation source against a real Dovecot (test/helpers/dovecot.ts):
 * mail that reached the mailbox but not the SMTP door ends up in the inbox exactly
 * once, byte for byte, marked reconciled; mail that came by SMTP is not doubled; a
 * second run appends nothing; a later message is picked up by the next run (UID
 * tracking), a new UIDVALIDITY re-lists without doubling; the mailbox is only read;
 * the password never comes back; a wrong password shows in the status.
 *
 * "Came by SMTP" is put into the inbox the way the SMTP door stores a message after
 * DATA: the mail event shape (emailEvent) appended through the store with the inbox's
 * dedupe key (the Message-ID), in process. The SMTP door itself is tested elsewhere.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { ImapFlow } from "imapflow";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { dedupeKeyOf, dedupeWindowMs } from "../dist/core/dedupe.js";
import { emailEvent } from "../dist/core/email-event.js";
import type { StoredInbox } from "../dist/core/types.js";
import { startDovecot, type Dovecot } from "./helpers/dovecot.js";
import { bodyBytes, readAll, type Envelope } from "./helpers/http.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

interface SourceView {
  id: string;
  credentials: Record<string, unknown>;
  status: {
    lastRun: { finishedAt: string; listed: number; missing: number; appended: number; skipped?: number; error: string | null } | null;
    error: string | null;
    failures: number;
  };
}

let dovecot: Dovecot;
let server: TestServer;
/** Every reply of the API in this file, to check that no password is in any of them. */
const replies: string[] = [];

beforeAll(async () => {
  dovecot = await startDovecot();
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
  await dovecot?.stop();
});

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const response = await server.admin(path, { ...init, headers: init.body !== undefined ? { "content-type": "application/json" } : {} });
  const text = await response.text();
  replies.push(text);
  return { status: response.status, text };
}

async function createSource(inboxId: string, body: Record<string, unknown>): Promise<SourceView> {
  const { status, text } = await api(`/api/inboxes/${inboxId}/sources`, { method: "POST", body: JSON.stringify(body) });
  expect(status, text).toBe(201);
  return JSON.parse(text) as SourceView;
}

async function getSource(inboxId: string, sourceId: string): Promise<SourceView> {
  const { status, text } = await api(`/api/inboxes/${inboxId}/sources/${sourceId}`);
  expect(status, text).toBe(200);
  return JSON.parse(text) as SourceView;
}

/** POST …/run, then wait until the status shows a run that finished after the request. */
async function runNow(inboxId: string, sourceId: string): Promise<SourceView> {
  const before = (await getSource(inboxId, sourceId)).status.lastRun?.finishedAt ?? "";
  expect((await api(`/api/inboxes/${inboxId}/sources/${sourceId}/run`, { method: "POST" })).status).toBe(202);
  let view: SourceView | undefined;
  await vi.waitFor(
    async () => {
      view = await getSource(inboxId, sourceId);
      if ((view.status.lastRun?.finishedAt ?? "") <= before) throw new Error(`no new run yet: ${JSON.stringify(view.status)}`);
    },
    { timeout: 20_000, interval: 50 },
  );
  return view!;
}

function imapClient(): ImapFlow {
  const client = new ImapFlow({
    host: "127.0.0.1",
    port: dovecot.imapsPort,
    secure: true,
    tls: { ca: dovecot.certificate },
    auth: { user: dovecot.user, pass: dovecot.password },
    logger: false,
  });
  client.on("error", () => undefined);
  return client;
}

/** Delivers messages into the mailbox the way an MTA's final delivery would: IMAP APPEND. */
async function deliverToMailbox(...messages: Buffer[]): Promise<void> {
  const client = imapClient();
  await client.connect();
  for (const message of messages) await client.append("INBOX", message);
  await client.logout();
}

async function mailboxFlags(): Promise<string[][]> {
  const client = imapClient();
  await client.connect();
  const lock = await client.getMailboxLock("INBOX", { readOnly: true });
  const flags: string[][] = [];
  // \Recent is a session flag (the first session to see a message gets it), not one anybody set.
  for await (const message of client.fetch("1:*", { uid: true, flags: true }, { uid: true }))
    flags.push([...(message.flags ?? [])].filter((flag) => flag !== "\\Recent"));
  lock.release();
  await client.logout();
  return flags;
}

/** A message with CRLF lines, 8-bit text and a base64 part of random bytes (so no two are alike). */
function message(n: number, messageId: string | null): Buffer {
  const attachment = randomBytes(3000).toString("base64").replace(/.{76}/g, "$&\r\n");
  const head = [
    `From: Vendor <orders@vendor.example>`,
    `To: inbox@tailhook.example`,
    `Subject: Order ${n} update`,
    `Date: Mon, 01 Jan 2024 10:00:0${n % 10} +0000`,
    ...(messageId === null ? [] : [`Message-ID: ${messageId}`]),
    `MIME-Version: 1.0`,
    `Content-Type: multipart/mixed; boundary="b${n}"`,
  ].join("\r\n");
  const text = Buffer.concat([
    Buffer.from(
      `${head}\r\n\r\n--b${n}\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nStatus: `,
      "latin1",
    ),
    Buffer.from([0xe9, 0x74, 0xe9, 0x20, 0xff]),
    Buffer.from(
      `\r\n.line starting with a dot\r\n--b${n}\r\nContent-Type: application/octet-stream; name="o${n}.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--b${n}--\r\n`,
      "latin1",
    ),
  ]);
  return text;
}

/** The copy the mailbox holds of a message that also came by SMTP: the MTA prepended its trace headers. */
function mailboxCopy(raw: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      "Delivered-To: inbox@tailhook.example\r\nReceived: from mx.vendor.example by mail.tailhook.example; Mon, 01 Jan 2024 10:00:00 +0000\r\n",
    ),
    raw,
  ]);
}

/** Stores a message as the SMTP door does after DATA: the mail event, deduplicated on the inbox's key. */
async function cameBySmtp(inboxId: string, raw: Buffer): Promise<void> {
  const inbox = (await server.store.getInbox(inboxId)) as StoredInbox;
  const event = emailEvent({
    raw,
    envelope: {
      mailFrom: "orders@vendor.example",
      rcptTo: `${inboxId}@tailhook.example`,
      helo: "mx.vendor.example",
      remoteAddress: "127.0.0.1",
      tls: false,
    },
  });
  const key = dedupeKeyOf(inbox.settings.dedupe!, event);
  expect(key).toBeDefined();
  const result = await server.store.appendEvent(inbox.streamId, event, {
    dedupe: { key: key!, windowMs: dedupeWindowMs(inbox.settings.dedupe!) },
  });
  expect(result.status).toBe("appended");
}

function messageIdOf(event: Envelope): string | undefined {
  return /^Message-ID: (.*)$/im.exec(bodyBytes(event).toString("latin1").split("\r\n\r\n")[0]!)?.[1];
}

async function createInbox(settings: Record<string, unknown>): Promise<{ id: string; token: string; streamUrl: string }> {
  const { status, text } = await api("/api/inboxes", { method: "POST", body: JSON.stringify({ settings }) });
  expect(status, text).toBe(201);
  return JSON.parse(text) as { id: string; token: string; streamUrl: string };
}

function tlsSource(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "imap",
    host: "127.0.0.1",
    port: dovecot.imapsPort,
    ca: dovecot.certificate,
    user: dovecot.user,
    password: dovecot.password,
    intervalSeconds: 3600,
    ...extra,
  };
}

describe("imap source", () => {
  it("appends the mail the SMTP path missed once each, byte-exact and reconciled; SMTP mail is not doubled; later mail is picked up", async () => {
    const inbox = await createInbox({ dedupe: "message-id" });
    const smtp = [1, 2, 3].map((n) => message(n, `<smtp-${n}.${inbox.id}@vendor.example>`));
    const missed = [4, 5].map((n) => message(n, `<missed-${n}.${inbox.id}@vendor.example>`));
    const withoutId = message(6, null);
    for (const raw of smtp) await cameBySmtp(inbox.id, raw);
    await deliverToMailbox(mailboxCopy(smtp[0]!), missed[0]!, mailboxCopy(smtp[1]!), withoutId, missed[1]!, mailboxCopy(smtp[2]!));

    const source = await createSource(inbox.id, tlsSource());
    expect(source.credentials).toEqual({ password: "set" });
    const first = await runNow(inbox.id, source.id);
    expect(first.status.lastRun).toMatchObject({ listed: 6, missing: 2, appended: 2, skipped: 1, error: null });

    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map(messageIdOf)).toEqual([
      ...smtp.map((_, i) => `<smtp-${i + 1}.${inbox.id}@vendor.example>`),
      ...missed.map((_, i) => `<missed-${i + 4}.${inbox.id}@vendor.example>`),
    ]);
    for (const [i, event] of events.slice(0, 3).entries()) {
      expect(bodyBytes(event).equals(smtp[i]!)).toBe(true);
      expect(event.origin).toBeUndefined();
    }
    for (const [i, event] of events.slice(3).entries()) {
      expect(bodyBytes(event).equals(missed[i]!), "byte-exact raw message").toBe(true);
      expect(event).toMatchObject({ method: "SMTP", contentType: "message/rfc822", origin: "reconciled", source: source.id });
      expect(event.email).toMatchObject({ mailFrom: "", rcptTo: "", imap: { mailbox: "INBOX", uid: i === 0 ? 2 : 5 } });
      expect(event.email).not.toHaveProperty("helo");
      expect(event.email).not.toHaveProperty("remoteAddress");
    }

    // Nothing new: the second run lists nothing past the last UID and appends nothing.
    const second = await runNow(inbox.id, source.id);
    expect(second.status.lastRun).toMatchObject({ listed: 0, appended: 0, error: null });
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(5);

    // Later: one message only in the mailbox, one that also came by SMTP.
    const later = message(7, `<later-7.${inbox.id}@vendor.example>`);
    const bothWays = message(8, `<both-8.${inbox.id}@vendor.example>`);
    await cameBySmtp(inbox.id, bothWays);
    await deliverToMailbox(later, mailboxCopy(bothWays));
    const third = await runNow(inbox.id, source.id);
    expect(third.status.lastRun).toMatchObject({ listed: 2, missing: 1, appended: 1, error: null });
    const after = (await readAll(inbox.streamUrl, inbox.token)).events;
    expect(after.map(messageIdOf).slice(5)).toEqual([`<both-8.${inbox.id}@vendor.example>`, `<later-7.${inbox.id}@vendor.example>`]);
    expect(bodyBytes(after[6]!).equals(later)).toBe(true);
    expect(after[6]).toMatchObject({ origin: "reconciled", email: { imap: { uid: 7 } } });

    // A new UIDVALIDITY (the mailbox was rebuilt): everything is listed again, nothing is doubled.
    const oldValidity = after[6]!.email!.imap!.uidValidity;
    execFileSync("doveadm", ["-c", dovecot.configPath, "mailbox", "update", "-u", dovecot.user, "--uid-validity", "4242", "INBOX"]);
    const relisted = await runNow(inbox.id, source.id);
    expect(relisted.status.lastRun).toMatchObject({ listed: 8, missing: 0, appended: 0, skipped: 1, error: null });
    expect(oldValidity).not.toBe("4242");
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(7);

    // Read-only: no message was marked \Seen (or anything else) by the runs.
    expect(await mailboxFlags()).toEqual(Array.from({ length: 8 }, () => []));

    const list = await api(`/api/inboxes/${inbox.id}/sources`);
    expect(list.status).toBe(200);
  });

  it("shows a wrong password as the run's error (over STARTTLS), and counts the failure", async () => {
    const inbox = await createInbox({ dedupe: "message-id" });
    const wrong = `${dovecot.password}-wrong`;
    const source = await createSource(inbox.id, tlsSource({ security: "starttls", port: dovecot.imapPort, password: wrong }));
    const view = await runNow(inbox.id, source.id);
    expect(view.status.error).toMatch(/IMAP login failed/);
    expect(view.status.failures).toBe(1);
    expect(view.status.lastRun).toMatchObject({ appended: 0 });
    expect(replies.join("\n")).not.toContain(wrong);
  });

  it("reads a loopback mailbox without TLS only when asked, and refuses what would not be safe", async () => {
    const inbox = await createInbox({ dedupe: "message-id" });
    // withoutMessageId "append": the message without a Message-ID is appended too, keyed on its bytes.
    const plain = await createSource(inbox.id, {
      kind: "imap",
      host: "127.0.0.1",
      port: dovecot.imapPort,
      security: "plain",
      user: dovecot.user,
      password: dovecot.password,
      withoutMessageId: "append",
      intervalSeconds: 3600,
    });
    const run = await runNow(inbox.id, plain.id);
    expect(run.status.lastRun).toMatchObject({ listed: 8, missing: 8, appended: 8, skipped: 0, error: null });
    const events = (await readAll(inbox.streamUrl, inbox.token)).events;
    expect(events).toHaveLength(8);
    expect(events.filter((event) => messageIdOf(event) === undefined)).toHaveLength(1);
    // A second source over the same mailbox lists it all and finds every message present, the one without an id too.
    const again = await createSource(inbox.id, tlsSource({ withoutMessageId: "append" }));
    const second = await runNow(inbox.id, again.id);
    expect(second.status.lastRun).toMatchObject({ listed: 8, missing: 0, appended: 0, error: null });
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(8);

    const refused = async (inboxId: string, body: Record<string, unknown>, pattern: RegExp) => {
      const { status, text } = await api(`/api/inboxes/${inboxId}/sources`, { method: "POST", body: JSON.stringify(body) });
      expect(status, text).toBe(400);
      expect((JSON.parse(text) as { error: { message: string } }).error.message).toMatch(pattern);
    };
    await refused(inbox.id, tlsSource({ host: "imap.vendor.example", security: "plain" }), /only to 127\.0\.0\.1/);
    await refused(inbox.id, tlsSource({ security: "none" }), /security must be/);
    const noDedupe = await createInbox({});
    await refused(noDedupe.id, tlsSource(), /"message-id" preset/);
    const githubDedupe = await createInbox({ dedupe: "github" });
    await refused(githubDedupe.id, tlsSource(), /"message-id" preset/);
  });

  it("never returns the password", () => {
    expect(replies.length).toBeGreaterThan(10);
    expect(replies.join("\n")).not.toContain(dovecot.password);
  });
});
