/* The mail event shape and the message-id dedupe preset: pure functions shared by the SMTP door and the IMAP source. */
import { describe, expect, it } from "vitest";
import { emailEvent, parseEmailRecipient } from "../dist/core/email-event.js";
import { emailHeaderValue } from "../dist/core/email-message.js";
import { dedupeKeyOf, parseDedupeSettings } from "../dist/core/dedupe.js";

const envelope = {
  mailFrom: "vendor@example.com",
  rcptTo: "AbCdEfGhIjKlMnOpQrStUvWx+orders@mail.test",
  helo: "mx.example.com",
  remoteAddress: "127.0.0.1",
  tls: false,
};

describe("mail recipients", () => {
  it("split into inbox id (case kept) and tag", () => {
    expect(parseEmailRecipient("AbC_-9@x.test")).toEqual({ inboxId: "AbC_-9", tag: undefined });
    expect(parseEmailRecipient("AbC+a+b@x.test")).toEqual({ inboxId: "AbC", tag: "a+b" });
    expect(parseEmailRecipient("no-domain")).toBeUndefined();
    expect(parseEmailRecipient('"quoted"@x.test')).toBeUndefined();
  });
});

describe("emailEvent", () => {
  it("keeps the raw bytes and maps the envelope onto a CapturedRequest", () => {
    const raw = Buffer.from("Subject: hi\r\n\r\nbody \xff\n bare LF\r\n", "latin1");
    const event = emailEvent({ raw, envelope, receivedAt: 5 });
    expect(event.method).toBe("SMTP");
    expect(event.path).toBe("/orders");
    expect(event.query).toBe("");
    expect(event.rawHeaders).toEqual(["Content-Type", "message/rfc822"]);
    expect(event.remoteAddr).toBe("127.0.0.1");
    expect(event.receivedAt).toBe(5);
    expect(Buffer.from(event.body).equals(raw)).toBe(true);
    expect(event.annotations).toEqual({ email: envelope });
    expect(emailEvent({ raw, envelope: { ...envelope, rcptTo: "x@y" } }).path).toBe("/");
    expect(emailEvent({ raw, envelope: { ...envelope, rcptTo: "x+a/b#c@y" } }).path).toBe("/a%2Fb%23c");
    expect(emailEvent({ raw, envelope, origin: "reconciled", source: "imap" }).annotations).toEqual({
      email: envelope,
      origin: "reconciled",
      source: "imap",
    });
  });
});

describe("email headers", () => {
  it("are read from the header block only, case-insensitively, unfolded", () => {
    const raw = Buffer.from("From: a@b\r\nmessage-ID:\r\n <folded@id>\r\nX-Order: 1\r\n\r\nMessage-ID: <in-body@id>\r\n");
    expect(emailHeaderValue(raw, "Message-Id")).toBe("<folded@id>");
    expect(emailHeaderValue(raw, "x-order")).toBe("1");
    expect(emailHeaderValue(Buffer.from("Subject: x\n\nMessage-ID: <body@id>\n"), "message-id")).toBeUndefined();
    expect(emailHeaderValue(Buffer.from("Message-ID: <bare-lf@id>\nSubject: x\n"), "message-id")).toBe("<bare-lf@id>");
  });
});

describe("the message-id dedupe preset", () => {
  it("keys mail events by their Message-ID and leaves webhooks alone", () => {
    const settings = parseDedupeSettings("message-id");
    expect(settings).toMatchObject({ preset: "message-id", emailHeader: "message-id" });
    const raw = Buffer.from("Message-ID: <a@b>\r\n\r\nhi\r\n");
    expect(dedupeKeyOf(settings, emailEvent({ raw, envelope }))).toBe("<a@b>");
    expect(dedupeKeyOf(settings, emailEvent({ raw: Buffer.from("Subject: none\r\n\r\n"), envelope }))).toBeUndefined();
    const webhook = {
      id: "e",
      receivedAt: 0,
      method: "POST",
      path: "",
      query: "",
      rawHeaders: ["Content-Type", "text/plain"],
      remoteAddr: "",
      body: raw,
    };
    expect(dedupeKeyOf(settings, webhook)).toBeUndefined();
    expect(parseDedupeSettings({ emailHeader: "X-Order" })).toMatchObject({ emailHeader: "x-order" });
  });
});
