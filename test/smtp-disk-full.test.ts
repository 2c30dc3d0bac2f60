/*
 * The SMTP door when the store cannot commit: a data folder on a small tmpfs that fills
 * up (we run as root). Every reply must be 250 (stored) or 451 (nothing acknowledged),
 * and after space is freed every 250 is there byte for byte and no 451 is. SQLite only:
 * on PostgreSQL the database's disk is not the test's to fill.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeEnvelopeBody } from "../dist/core/capture.js";
import type { EventEnvelope } from "../dist/core/types.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { rawMessage, sendRaw, smtpTarget } from "./helpers/smtp.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function event(srv: TestServer, inboxId: string, seq: number): Promise<EventEnvelope & { status: number }> {
  const response = await srv.admin(`/api/inboxes/${inboxId}/events/${seq}`);
  return { status: response.status, ...((response.status === 200 ? await response.json() : {}) as EventEnvelope) };
}

async function lastSeq(srv: TestServer, inboxId: string): Promise<number> {
  return ((await (await srv.admin(`/api/inboxes/${inboxId}`)).json()) as { lastSeq: number }).lastSeq;
}

function message(id: string, body: string): Buffer {
  return rawMessage({ From: "vendor@vendor.test", Subject: id, "Message-ID": `<${id}@vendor.test>` }, body);
}

/** A tmpfs for the disk-full case; we run as root. */
function mountTmpfs(sizeMiB: number): string | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), "tailhook-smtp-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=0700`, "tmpfs", dir], { stdio: "ignore" });
  } catch (error) {
    return { skip: `cannot mount a tmpfs (${(error as Error).message.split("\n")[0]})` };
  }
  cleanups.push(() => {
    execFileSync("umount", ["-l", dir], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

describe("SMTP on a full disk", () => {
  it("answers 451 (never 250) when the store cannot commit; every 250 is stored, no 451 is", async (context) => {
    const volume = mountTmpfs(12);
    if (typeof volume !== "string") {
      console.warn(`\n*** smtp: disk-full case SKIPPED: ${volume.skip} ***\n`);
      context.skip();
      return;
    }
    const dataDir = join(volume, "data");
    mkdirSync(dataDir);
    const full = await startTestServer({ smtpPort: 0 }, { dataDir });
    cleanups.push(() => full.stop());
    const target = smtpTarget(full.smtpUrl!);
    const inbox = await full.createInbox({ settings: { maxBodyBytes: 1024 * 1024 } });
    writeFileSync(join(volume, "filler"), randomBytes(7 * 1024 * 1024));
    const acked: Buffer[] = [];
    const refused: Buffer[] = [];
    let n = 0;
    while (refused.length < 3 && n < 200) {
      const raw = message(
        `full-${n++}`,
        randomBytes(150 * 1024)
          .toString("base64")
          .replace(/(.{76})/g, "$1\r\n"),
      );
      const sent = await sendRaw(target, { to: [`${inbox.id}@x.test`], raw });
      if (sent.ok && sent.code === 250) acked.push(raw);
      else {
        expect(sent.code, sent.response).toBe(451);
        refused.push(raw);
      }
    }
    expect(refused.length).toBe(3);
    expect(acked.length).toBeGreaterThan(0);
    // Space back: what got 250 is all there, byte for byte, and nothing that got 451.
    rmSync(join(volume, "filler"));
    const seqCount = await lastSeq(full, inbox.id);
    const stored: Buffer[] = [];
    for (let seq = 1; seq <= seqCount; seq++) {
      const found = await event(full, inbox.id, seq);
      if (found.status === 200) stored.push(decodeEnvelopeBody(found));
    }
    expect(stored.length).toBe(acked.length);
    for (let i = 0; i < acked.length; i++) expect(stored[i]!.equals(acked[i]!)).toBe(true);
  });
});
