/*
 * Durability of the SMTP door under SIGKILL: a `tailhook serve --smtp-port 0` child is
 * killed while 16 nodemailer clients are in the middle of DATA. After a restart every
 * message that got 250 is there exactly once, byte for byte. A message that did not
 * get 250 may be there only if its client never got any reply (the commit won the
 * race with the kill, the 250 was lost with the process): the same as a webhook whose
 * 2xx was lost, the sender retries and Message-ID dedupe catches it (docs/email.md).
 * A message refused with a reply (4xx/5xx) is never there.
 */
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { decodeEnvelopeBody } from "../dist/core/capture.js";
import { emailHeaderValue } from "../dist/core/email-message.js";
import { readAll } from "./helpers/http.js";
import { createInbox, killAllChildren, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";
import { rawMessage, sendRaw, smtpTarget } from "./helpers/smtp.js";

const SMTP_LINE = /tailhook: taking mail on (smtp:\/\/\S+)/;
const CLIENTS = 16;

afterAll(() => killAllChildren());

async function startWithSmtp(dataDir: string): Promise<ServerProcess & { smtpUrl: string }> {
  const server = await startServerProcess({ dataDir, args: ["--smtp-port", "0"] });
  const lines = await server.stderr.waitFor((all) => all.some((line) => SMTP_LINE.test(line)), 10_000, "the SMTP line");
  return Object.assign(server, { smtpUrl: SMTP_LINE.exec(lines.find((line) => SMTP_LINE.test(line))!)![1]! });
}

type Outcome = "acked" | "refused" | "no_reply";

/** 16 clients send until `signal` hits the server after 60 acks; then the restarted server's inbox is checked. */
async function sendThroughStop(signal: NodeJS.Signals) {
  const dataDir = tempDir("tailhook-smtp-crash-");
  const server = await startWithSmtp(dataDir);
  const inbox = await createInbox(server);
  const target = smtpTarget(server.smtpUrl);
  const sent = new Map<string, { raw: Buffer; outcome: Outcome }>();
  let acked = 0;
  let stopped = false;
  let n = 0;

  let sixtiethAck!: () => void;
  const sixtyAcked = new Promise<void>((resolve) => (sixtiethAck = resolve));
  const stopper = (async () => {
    await sixtyAcked;
    stopped = true;
    return server.kill(signal);
  })();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (!stopped) {
        const id = `crash-${n++}@vendor.test`;
        // 64-320 KiB: DATA takes long enough that several clients are inside it at the stop.
        const body = randomBytes(48 * 1024 + Math.floor(Math.random() * 192 * 1024))
          .toString("base64")
          .replace(/(.{76})/g, "$1\r\n");
        const raw = rawMessage({ From: "v@vendor.test", Subject: id, "Message-ID": `<${id}>` }, body);
        const entry = { raw, outcome: "no_reply" as Outcome };
        sent.set(`<${id}>`, entry);
        const result = await sendRaw(target, { to: [`${inbox.id}@x.test`], raw });
        if (result.ok && result.code === 250) {
          entry.outcome = "acked";
          if (++acked === 60) sixtiethAck();
        } else if (result.code !== undefined) {
          entry.outcome = "refused";
        }
      }
    }),
  );
  const exit = await stopper;
  const restarted = await startServerProcess({ dataDir });
  const { streamUrl } = (await (
    await fetch(`${restarted.url}/api/inboxes/${inbox.id}`, { headers: { authorization: `Bearer ${restarted.adminToken}` } })
  ).json()) as { streamUrl: string };
  const { events } = await readAll(streamUrl, inbox.token);
  const seen = new Map<string, number>();
  const unexpected: string[] = [];
  let committedUnanswered = 0;
  for (const stored of events) {
    const body = decodeEnvelopeBody(stored);
    const messageId = emailHeaderValue(body, "message-id")!;
    seen.set(messageId, (seen.get(messageId) ?? 0) + 1);
    const entry = sent.get(messageId);
    if (!entry || !entry.raw.equals(body)) unexpected.push(`${messageId}: not what was sent`);
    else if (entry.outcome === "refused") unexpected.push(`${messageId}: stored although refused`);
    else if (entry.outcome === "no_reply") committedUnanswered++;
  }
  const missing = [...sent.entries()].filter(([id, entry]) => entry.outcome === "acked" && !seen.has(id)).map(([id]) => id);
  const outcomes = [...sent.values()].map((entry) => entry.outcome);
  return {
    exit,
    acked,
    refused: outcomes.filter((outcome) => outcome === "refused").length,
    unanswered: outcomes.filter((outcome) => outcome === "no_reply").length,
    committedUnanswered,
    unexpected,
    doubled: [...seen.entries()].filter(([, count]) => count > 1),
    missing,
    restarted,
  };
}

describe("SMTP durability", () => {
  it("SIGKILL during DATA: every 250 survives byte-exact; nothing refused is stored; unanswered ones at most once", async () => {
    const result = await sendThroughStop("SIGKILL");
    expect(result.exit.signal).toBe("SIGKILL");
    expect(result.unanswered, "clients inside a transaction at the kill").toBeGreaterThan(1);
    expect(result.unexpected).toEqual([]);
    expect(result.doubled).toEqual([]);
    expect(result.missing).toEqual([]);
    console.info(
      `smtp SIGKILL: ${result.acked} acked, all there; ${result.unanswered} unanswered at the kill, ${result.committedUnanswered} of them committed before it`,
    );
    expect((await result.restarted.kill("SIGTERM")).code).toBe(0);
  });

  it("SIGTERM during DATA: commits in flight are answered, the rest refused (421) and not stored, exit 0", async () => {
    const result = await sendThroughStop("SIGTERM");
    expect(result.exit).toEqual({ code: 0, signal: null });
    expect(result.unexpected).toEqual([]);
    expect(result.doubled).toEqual([]);
    expect(result.missing).toEqual([]);
    // A graceful stop answers everyone: no commit is left without its reply.
    expect(result.committedUnanswered).toBe(0);
    console.info(`smtp SIGTERM: ${result.acked} acked, ${result.refused} refused, ${result.unanswered} unanswered`);
    expect((await result.restarted.kill("SIGTERM")).code).toBe(0);
  });
});
