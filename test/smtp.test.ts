/*
 * The SMTP door against a real server (in process, SMTP on port 0) with nodemailer as
 * the client: plain and STARTTLS, AUTH, 8-bit and binary content kept byte for byte,
 * several recipients, refusals (550, 552), the parsed view, Message-ID dedupe, and
 * tail / forward / retention unchanged. The full disk (451) is in smtp-disk-full.test.ts.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import MailComposer from "nodemailer/lib/mail-composer";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { decodeEnvelopeBody } from "../dist/core/capture.js";
import { loadServerConfig } from "../dist/config.js";
import type { EventEnvelope } from "../dist/core/types.js";
import { cliEnv, killAllChildren, spawnCli } from "./helpers/processes.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { rawMessage, rawSession, selfSignedCertificate, sendRaw, smtpTarget, type SmtpTarget } from "./helpers/smtp.js";
import { headerValues, Target } from "./helpers/target.js";

const cert = selfSignedCertificate();
let server: TestServer;
let smtp: SmtpTarget;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  server = await startTestServer(
    { smtpPort: 0, smtpTlsCert: cert.certFile, smtpTlsKey: cert.keyFile },
    { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } },
  );
  smtp = smtpTarget(server.smtpUrl!);
});

afterAll(async () => {
  await killAllChildren();
  for (const cleanup of cleanups.reverse()) await cleanup();
  await server?.stop();
});

async function event(srv: TestServer, inboxId: string, seq: number): Promise<EventEnvelope & { status: number }> {
  const response = await srv.admin(`/api/inboxes/${inboxId}/events/${seq}`);
  return { status: response.status, ...((response.status === 200 ? await response.json() : {}) as EventEnvelope) };
}

async function lastSeq(srv: TestServer, inboxId: string): Promise<number> {
  return ((await (await srv.admin(`/api/inboxes/${inboxId}`)).json()) as { lastSeq: number }).lastSeq;
}

function message(id: string, body = "hello\r\n", extra: Record<string, string> = {}): Buffer {
  return rawMessage(
    {
      From: "Vendor <vendor@vendor.test>",
      To: "orders@example.test",
      Subject: `order ${id}`,
      "Message-ID": `<${id}@vendor.test>`,
      ...extra,
    },
    body,
  );
}

describe("SMTP ingest", () => {
  it("reports where it takes mail and advertises SIZE, 8BITMIME, STARTTLS and no AUTH", async () => {
    expect(server.smtpUrl).toMatch(/^smtp:\/\/127\.0\.0\.1:\d+$/);
    const [, ehlo] = await rawSession(smtp, ["EHLO client.test", "QUIT"]);
    expect(ehlo).toMatch(/^250-/);
    expect(ehlo).toContain(`SIZE ${25 * 1024 * 1024}`);
    expect(ehlo).toContain("8BITMIME");
    expect(ehlo).toContain("STARTTLS");
    expect(ehlo).not.toContain("AUTH");
  });

  it("plain: 250 once stored; the exact bytes as message/rfc822, the envelope in the event", async () => {
    const inbox = await server.createInbox();
    const raw = message("plain-1");
    const sent = await sendRaw(smtp, { to: [`${inbox.id}@mail.example.test`], raw, from: "bounces@vendor.test" });
    expect(sent).toMatchObject({ ok: true, code: 250 });
    const stored = await event(server, inbox.id, 1);
    expect(stored.status).toBe(200);
    expect(decodeEnvelopeBody(stored).equals(raw)).toBe(true);
    expect(stored).toMatchObject({
      method: "SMTP",
      path: "/",
      query: "",
      contentType: "message/rfc822",
      headers: [["Content-Type", "message/rfc822"]],
      remoteAddr: "127.0.0.1",
    });
    expect(stored.email).toEqual({
      mailFrom: "bounces@vendor.test",
      rcptTo: `${inbox.id}@mail.example.test`,
      helo: expect.any(String),
      remoteAddress: "127.0.0.1",
      tls: false,
    });
    // The +tag becomes the path; the null sender (a bounce) is "".
    const tagged = await rawSession(smtp, [
      "EHLO c.test",
      "MAIL FROM:<>",
      `RCPT TO:<${inbox.id}+orders@x.test>`,
      "DATA",
      Buffer.from("Subject: t\r\n\r\nx\r\n.\r\n"),
      "QUIT",
    ]);
    expect(tagged.slice(1, 6).map((reply) => reply.slice(0, 3))).toEqual(["250", "250", "250", "354", "250"]);
    expect(await event(server, inbox.id, 2)).toMatchObject({
      path: "/orders",
      email: { mailFrom: "", rcptTo: `${inbox.id}+orders@x.test`, helo: "c.test" },
    });
  });

  it("STARTTLS: the session is encrypted and the event says so", async () => {
    const inbox = await server.createInbox();
    const raw = message("tls-1");
    expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw, tls: true })).toMatchObject({ ok: true, code: 250 });
    const stored = await event(server, inbox.id, 1);
    expect(decodeEnvelopeBody(stored).equals(raw)).toBe(true);
    expect(stored.email?.tls).toBe(true);
  });

  it("8-bit and binary content of several MiB, dot lines and all, is stored byte for byte", async () => {
    const inbox = await server.createInbox({ settings: { maxBodyBytes: 16 * 1024 * 1024 } });
    // A MIME message with a 3 MiB binary attachment, as nodemailer composes it.
    const attachment = randomBytes(3 * 1024 * 1024);
    let composed: Buffer = await new MailComposer({
      from: "vendor@vendor.test",
      to: "orders@example.test",
      subject: "Grüße, export ready",
      text: "Ünïcödé body\r\n.leading dot\r\n..two dots\r\n",
      attachments: [{ filename: "export.bin", content: attachment, contentType: "application/octet-stream" }],
    })
      .compile()
      .build();
    if (!composed.subarray(-2).equals(Buffer.from("\r\n"))) composed = Buffer.concat([composed, Buffer.from("\r\n")]);
    // And 8BITMIME content: every byte value except CR and LF, in 998-byte lines, some starting with ".".
    const eightBit = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < eightBit.length; i++) eightBit[i] = [0x0a, 0x0d].includes(i % 256) ? 0x2e : i % 256;
    const lines: Buffer[] = [];
    for (let offset = 0; offset < eightBit.length; offset += 998)
      lines.push(Buffer.concat([Buffer.from(offset % 3 === 0 ? "." : ""), eightBit.subarray(offset, offset + 998), Buffer.from("\r\n")]));
    lines.push(Buffer.from(".\r\n..\r\n. \r\n"));
    const raw8 = rawMessage(
      { Subject: "8bit", "Content-Type": "application/octet-stream", "Content-Transfer-Encoding": "8bit" },
      Buffer.concat(lines),
    );
    for (const raw of [composed, raw8]) {
      expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw })).toMatchObject({ ok: true, code: 250 });
    }
    expect(decodeEnvelopeBody(await event(server, inbox.id, 1)).equals(composed)).toBe(true);
    expect(decodeEnvelopeBody(await event(server, inbox.id, 2)).equals(raw8)).toBe(true);
    const view = (await (await server.admin(`/api/inboxes/${inbox.id}/events/1/email`)).json()) as { attachments: unknown[] };
    expect(view.attachments).toEqual([
      {
        filename: "export.bin",
        contentType: "application/octet-stream",
        size: attachment.length,
        contentId: null,
        disposition: "attachment",
      },
    ]);
  });

  it("bare LF, bare CR and NUL bytes (which nodemailer would rewrite) are kept as sent over a raw socket", async () => {
    const inbox = await server.createInbox();
    const content = Buffer.from("Subject: bare\nX: y\r\n\nline\rwith CR\n.not stuffed after LF\r\n..stuffed\r\n\x00\xff\xfe\r\n", "latin1");
    const wire = Buffer.concat([
      content.subarray(0, content.indexOf("..stuffed")),
      Buffer.from("...stuffed\r\n\x00\xff\xfe\r\n.\r\n", "latin1"),
    ]);
    const replies = await rawSession(smtp, [
      "EHLO c.test",
      "MAIL FROM:<a@b.test> BODY=8BITMIME",
      `RCPT TO:<${inbox.id}@x.test>`,
      "DATA",
      wire,
      "QUIT",
    ]);
    expect(replies[5]).toMatch(/^250 /);
    // The dot-stuffed "...stuffed" line is "..stuffed" once unstuffed; nothing else changed.
    expect(decodeEnvelopeBody(await event(server, inbox.id, 1)).toString("latin1")).toBe(content.toString("latin1"));
  });

  it("one message to several inboxes is stored once in each; a second +tag of one inbox adds nothing", async () => {
    const [a, b, c] = [await server.createInbox(), await server.createInbox(), await server.createInbox()];
    const raw = message("multi-1");
    const sent = await sendRaw(smtp, { to: [`${a.id}@x.test`, `${b.id}+billing@y.test`, `${a.id}+again@x.test`], raw });
    expect(sent).toMatchObject({ ok: true, code: 250, rejected: [] });
    expect([await lastSeq(server, a.id), await lastSeq(server, b.id), await lastSeq(server, c.id)]).toEqual([1, 1, 0]);
    expect((await event(server, a.id, 1)).email?.rcptTo).toBe(`${a.id}@x.test`);
    expect(await event(server, b.id, 1)).toMatchObject({ path: "/billing", email: { rcptTo: `${b.id}+billing@y.test` } });
    expect(decodeEnvelopeBody(await event(server, b.id, 1)).equals(raw)).toBe(true);
  });

  it("unknown, malformed and deleted inboxes are refused at RCPT TO with 550; the others still get the mail", async () => {
    const inbox = await server.createInbox();
    const deleted = await server.createInbox();
    expect((await server.admin(`/api/inboxes/${deleted.id}`, { method: "DELETE" })).status).toBe(204);
    const unknown = "AAAAAAAAAAAAAAAAAAAAAAAA";
    for (const to of [`${unknown}@x.test`, "postmaster@x.test", `${deleted.id}@x.test`]) {
      const replies = await rawSession(smtp, ["EHLO c.test", "MAIL FROM:<a@b.test>", `RCPT TO:<${to}>`, "QUIT"]);
      expect(replies[3]).toMatch(/^550 /);
    }
    const sent = await sendRaw(smtp, { to: [`${unknown}@x.test`, `${inbox.id}@x.test`], raw: message("mixed-1") });
    expect(sent).toMatchObject({ ok: true, code: 250, rejected: [`${unknown}@x.test`] });
    expect(await lastSeq(server, inbox.id)).toBe(1);
    const none = await sendRaw(smtp, { to: [`${unknown}@x.test`], raw: message("none-1") });
    expect(none).toMatchObject({ ok: false, code: 550 });
  });

  it("over the inbox's size limit: 552 (after DATA, or at RCPT TO when SIZE was declared), nothing stored", async () => {
    const small = await server.createInbox({ settings: { maxBodyBytes: 2000 } });
    const big = message("big-1", "x".repeat(70) + "\r\n".repeat(1) + "y".repeat(5000) + "\r\n");
    expect(await sendRaw(smtp, { to: [`${small.id}@x.test`], raw: big })).toMatchObject({ ok: false, code: 552 });
    const declared = await rawSession(smtp, ["EHLO c.test", "MAIL FROM:<a@b.test> SIZE=5000", `RCPT TO:<${small.id}@x.test>`, "QUIT"]);
    expect(declared[3]).toMatch(/^552 /);
    const overServerMax = await rawSession(smtp, ["EHLO c.test", `MAIL FROM:<a@b.test> SIZE=${25 * 1024 * 1024 + 1}`, "QUIT"]);
    expect(overServerMax[2]).toMatch(/^552 /);
    // Just under the limit is fine.
    const fits = message("fits-1", "z".repeat(1500) + "\r\n");
    expect(fits.length).toBeLessThanOrEqual(2000);
    expect(await sendRaw(smtp, { to: [`${small.id}@x.test`], raw: fits })).toMatchObject({ ok: true, code: 250 });
    expect(await lastSeq(server, small.id)).toBe(1);
    expect(decodeEnvelopeBody(await event(server, small.id, 1)).equals(fits)).toBe(true);
  });

  it("the parsed view: headers, text and HTML, attachments described without their bytes; 400 for a webhook", async () => {
    const inbox = await server.createInbox();
    const raw = await new MailComposer({
      from: '"Vendor Ops" <ops@vendor.test>',
      to: "a@example.test, B <b@example.test>",
      cc: "c@example.test",
      subject: "Service order 42 updated",
      date: new Date("2026-01-02T03:04:05Z"),
      messageId: "<so-42@vendor.test>",
      text: "Order 42 is done.",
      html: '<p>Order <b>42</b> is done.</p><img src="cid:logo@vendor">',
      attachments: [
        { filename: "report.csv", content: "a,b\n1,2\n", contentType: "text/csv" },
        { filename: "logo.png", content: randomBytes(5000), contentType: "image/png", cid: "logo@vendor" },
      ],
    })
      .compile()
      .build();
    expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw })).toMatchObject({ ok: true });
    const response = await server.admin(`/api/inboxes/${inbox.id}/events/1/email`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      subject: "Service order 42 updated",
      from: [{ name: "Vendor Ops", address: "ops@vendor.test" }],
      to: [
        { name: "", address: "a@example.test" },
        { name: "B", address: "b@example.test" },
      ],
      cc: [{ name: "", address: "c@example.test" }],
      replyTo: [],
      date: "2026-01-02T03:04:05.000Z",
      messageId: "<so-42@vendor.test>",
      inReplyTo: null,
      text: "Order 42 is done.",
      html: '<p>Order <b>42</b> is done.</p><img src="cid:logo@vendor">',
      // In MIME order: the inline image sits with the HTML in multipart/related, ahead of the attachment.
      attachments: [
        { filename: "logo.png", contentType: "image/png", size: 5000, contentId: "<logo@vendor>", disposition: "inline" },
        { filename: "report.csv", contentType: "text/csv", size: 8, contentId: null, disposition: "attachment" },
      ],
    });
    // The inbox's own token reads it too; a webhook event has no parsed view.
    expect(
      (await fetch(`${server.url}/api/inboxes/${inbox.id}/events/1/email`, { headers: { authorization: `Bearer ${inbox.token}` } })).status,
    ).toBe(200);
    expect((await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "hook" })).status).toBe(200);
    expect((await server.admin(`/api/inboxes/${inbox.id}/events/2/email`)).status).toBe(400);
  });

  it("the message-id dedupe preset: a resent message (same Message-ID) is answered 250 and stored once", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: "message-id" } });
    const first = message("dup-1");
    const resent = message("dup-1", "hello again, same id\r\n");
    expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw: first })).toMatchObject({ ok: true, code: 250 });
    expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw: resent })).toMatchObject({ ok: true, code: 250 });
    expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw: message("dup-2") })).toMatchObject({ ok: true, code: 250 });
    expect(await lastSeq(server, inbox.id)).toBe(2);
    expect(decodeEnvelopeBody(await event(server, inbox.id, 1)).equals(first)).toBe(true);
    expect(await event(server, inbox.id, 1)).toMatchObject({ deliveries: 2 });
  });

  it("retention applies to mail events", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 2 } } });
    for (const id of ["r-1", "r-2", "r-3"])
      expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw: message(id) })).toMatchObject({ ok: true });
    await vi.waitFor(async () => expect((await event(server, inbox.id, 1)).status).toBe(410), { timeout: 5000, interval: 50 });
    expect((await event(server, inbox.id, 3)).status).toBe(200);
  });

  it("tail shows mail events; forward POSTs the raw message as message/rfc822", async () => {
    const inbox = await server.createInbox();
    const raw = message("fwd-1", "Forward me\r\n");
    expect(await sendRaw(smtp, { to: [`${inbox.id}+orders@x.test`], raw })).toMatchObject({ ok: true });
    const env = cliEnv({ TAILHOOK_URL: server.url, TAILHOOK_TOKEN: inbox.token });
    cleanups.push(() => rmSync(env.HOME, { recursive: true, force: true }));
    const tail = spawnCli(["tail", inbox.id], env);
    const [line] = await tail.stdout.waitForLines(1);
    expect(line).toMatch(/#1\s+SMTP\s+\/orders\s.*From: Vendor/);
    await tail.kill("SIGTERM");

    const target = await Target.start();
    cleanups.push(() => target.close());
    const forwarder = spawnCli(["forward", inbox.id, "--to", `${target.url}/mail`], env);
    await vi.waitFor(() => expect(target.received.length).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 50 });
    await forwarder.kill("SIGTERM");
    const [delivered] = target.received;
    expect(delivered).toMatchObject({ method: "POST", url: "/mail/orders", seq: 1 });
    expect(headerValues(delivered!.rawHeaders, "content-type")).toEqual(["message/rfc822"]);
    expect(delivered!.body.equals(raw)).toBe(true);
  });
  it("wait prints the first mail event as NDJSON and exits 0, with the SMTP envelope and the raw message", async () => {
    const inbox = await server.createInbox();
    const env = cliEnv({ TAILHOOK_URL: server.url, TAILHOOK_TOKEN: inbox.token });
    cleanups.push(() => rmSync(env.HOME, { recursive: true, force: true }));
    const waiter = spawnCli(["wait", inbox.id, "--count", "1", "--timeout", "30"], env);
    const raw = message("wait-1", "Your export is ready\r\n");
    expect(await sendRaw(smtp, { to: [`${inbox.id}@x.test`], raw })).toMatchObject({ ok: true });
    const [line] = await waiter.stdout.waitForLines(1);
    expect((await waiter.exited).code).toBe(0);
    const printed = JSON.parse(line!) as EventEnvelope;
    expect(printed).toMatchObject({ seq: 1, method: "SMTP", contentType: "message/rfc822", email: { rcptTo: `${inbox.id}@x.test` } });
    expect(decodeEnvelopeBody(printed).equals(raw)).toBe(true);
  });
});

describe("SMTP settings", () => {
  it("are off without a port; AUTH needs TLS, cert and key go together", () => {
    expect(loadServerConfig({}, {}).smtp).toBeUndefined();
    expect(loadServerConfig({ smtpPort: 0 }, {}).smtp).toMatchObject({
      host: "127.0.0.1",
      port: 0,
      auth: undefined,
      maxMessageBytes: 25 * 1024 * 1024,
    });
    expect(loadServerConfig({ host: "::1" }, { TAILHOOK_SMTP_PORT: "2525" }).smtp).toMatchObject({ host: "::1", port: 2525 });
    expect(() => loadServerConfig({ smtpPort: 0 }, { TAILHOOK_SMTP_AUTH: "user:pw" })).toThrow(/needs --smtp-tls-cert/);
    expect(() => loadServerConfig({ smtpPort: 0, smtpTlsCert: "c.pem" }, {})).toThrow(/go together/);
    expect(() => loadServerConfig({ smtpPort: 0, smtpTlsCert: "c", smtpTlsKey: "k" }, { TAILHOOK_SMTP_AUTH: "nocolon" })).toThrow(
      /user:password/,
    );
    expect(loadServerConfig({ smtpPort: 0, smtpTlsCert: "c", smtpTlsKey: "k" }, { TAILHOOK_SMTP_AUTH: "u:p:w" }).smtp?.auth).toEqual({
      user: "u",
      password: "p:w",
    });
  });
});

describe("SMTP AUTH", () => {
  it("when TAILHOOK_SMTP_AUTH is set: required, over STARTTLS only; the user is in the event", async () => {
    const authed = await startTestServer(
      { smtpPort: 0, smtpTlsCert: cert.certFile, smtpTlsKey: cert.keyFile },
      { env: { TAILHOOK_SMTP_AUTH: "vendor:s3cret" } },
    );
    cleanups.push(() => authed.stop());
    const target = smtpTarget(authed.smtpUrl!);
    const inbox = await authed.createInbox();
    const raw = message("auth-1");
    const noAuth = await rawSession(target, ["EHLO c.test", "MAIL FROM:<a@b.test>", "QUIT"]);
    expect(noAuth[2]).toMatch(/^530 /);
    expect(await sendRaw(target, { to: [`${inbox.id}@x.test`], raw, tls: true, auth: { user: "vendor", pass: "wrong" } })).toMatchObject({
      ok: false,
      code: 535,
    });
    expect(await sendRaw(target, { to: [`${inbox.id}@x.test`], raw, tls: true, auth: { user: "vendor", pass: "s3cret" } })).toMatchObject({
      ok: true,
      code: 250,
    });
    expect(await lastSeq(authed, inbox.id)).toBe(1);
    expect((await event(authed, inbox.id, 1)).email).toMatchObject({ tls: true, authUser: "vendor" });
  });
});
