/*
 * SMTP clients for tests: nodemailer (the real client) sending an exact raw message,
 * a bare node:net session for bytes nodemailer would normalise (bare LF), and a
 * self-signed certificate made with openssl for STARTTLS.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";

export interface SmtpTarget {
  host: string;
  port: number;
}

export function smtpTarget(smtpUrl: string): SmtpTarget {
  const url = new URL(smtpUrl);
  return { host: url.hostname, port: Number(url.port) };
}

export interface SendOutcome {
  ok: boolean;
  /** The reply code to DATA (or to the command that failed). */
  code: number | undefined;
  response: string;
  accepted: string[];
  rejected: string[];
}

export interface SendOptions {
  from?: string;
  to: string[];
  raw: Buffer;
  /** STARTTLS required (the test certificate is self-signed: not verified, for tests only). */
  tls?: boolean;
  auth?: { user: string; pass: string };
}

/** Sends `raw` exactly (nodemailer's `raw` option: no headers added), one connection per message. */
export async function sendRaw(target: SmtpTarget, options: SendOptions): Promise<SendOutcome> {
  const transport = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: false,
    ...(options.tls ? { requireTLS: true } : { ignoreTLS: true }),
    tls: { rejectUnauthorized: false },
    ...(options.auth ? { auth: options.auth } : {}),
    connectionTimeout: 10_000,
    socketTimeout: 20_000,
  });
  try {
    const info = await transport.sendMail({ envelope: { from: options.from ?? "sender@vendor.test", to: options.to }, raw: options.raw });
    return {
      ok: true,
      code: Number(info.response.slice(0, 3)),
      response: info.response,
      accepted: info.accepted.map(String),
      rejected: info.rejected.map(String),
    };
  } catch (error) {
    const failure = error as { responseCode?: number; response?: string; message: string; rejected?: string[] };
    return {
      ok: false,
      code: failure.responseCode,
      response: failure.response ?? failure.message,
      accepted: [],
      rejected: failure.rejected ?? [],
    };
  } finally {
    transport.close();
  }
}

/** A message with CRLF line ends that nodemailer sends byte for byte (it only dot-stuffs). */
export function rawMessage(headers: Record<string, string>, body: string | Buffer): Buffer {
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  const content = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const ending = content.length === 0 || content.subarray(-2).toString("latin1") === "\r\n" ? "" : "\r\n";
  return Buffer.concat([Buffer.from(`${head}\r\n`, "utf8"), content, Buffer.from(ending)]);
}

/**
 * A bare SMTP session over node:net: sends each line (CRLF added) or, for DATA, the
 * given bytes as they are, and collects every reply. For bytes a real client would
 * rewrite (bare LF, bare CR).
 */
export async function rawSession(target: SmtpTarget, steps: Array<string | Buffer>): Promise<string[]> {
  const socket = connect(target.port, target.host);
  const replies: string[] = [];
  let buffered = "";
  let current: string[] = [];
  let waiting: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("latin1");
    let end: number;
    while ((end = buffered.indexOf("\r\n")) !== -1) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      // Multi-line replies ("250-…") end with the line whose fourth character is a space.
      current.push(line);
      if (line[3] !== "-") {
        replies.push(current.join("\n"));
        current = [];
        waiting?.();
      }
    }
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => undefined);
  const nextReply = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SMTP reply; got ${JSON.stringify(replies)}`)), 10_000);
      waiting = () => {
        if (replies.length < count) return;
        clearTimeout(timer);
        waiting = undefined;
        resolve();
      };
      waiting();
    });
  await nextReply(1);
  for (const step of steps) {
    const expected = replies.length + 1;
    socket.write(typeof step === "string" ? `${step}\r\n` : step);
    await nextReply(expected);
  }
  socket.end();
  await closed;
  return replies;
}

/** A self-signed certificate for 127.0.0.1 / localhost (openssl), as PEM files. */
export function selfSignedCertificate(): { certFile: string; keyFile: string } {
  const dir = mkdtempSync(join(tmpdir(), "tailhook-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile };
}
