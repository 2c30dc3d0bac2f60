/*
 * `forward --sign` / `replay --sign`: re-signing deliveries with a local Standard
 * Webhooks secret, so a replay of an event whose sender signed it an hour ago still
 * verifies at the receiver. Real processes (a `tailhook serve` child, CLI children)
 * and a target in this process that verifies every request with the real
 * `standardwebhooks` library and answers 401 when it fails. That library decodes the
 * body as UTF-8 before signing, so it cannot verify arbitrary bytes: the non-UTF-8
 * case is verified by hand with node:crypto (and the test shows the library failing it).
 */
import { createHmac, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  cliEnv,
  createInbox,
  killAllChildren,
  runCli,
  spawnCli,
  startServerProcess,
  tempDir,
  type ServerProcess,
} from "./helpers/processes.js";
import { headerValues, Target, type Received } from "./helpers/target.js";
import { waitUntil } from "./helpers/wait.js";

const HOUR_MS = 3600_000;
const TOLERANCE_S = 300;

const dirs: string[] = [];
const targets: Target[] = [];

afterEach(async () => {
  await killAllChildren();
  for (const target of targets.splice(0)) await target.close();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

async function startServer(): Promise<ServerProcess> {
  const dataDir = tempDir("tailhook-resign-data-");
  dirs.push(dataDir);
  return startServerProcess({ dataDir, args: ["--long-poll-timeout", "5000"] });
}

function cli(extra: NodeJS.ProcessEnv = {}) {
  const env = cliEnv(extra);
  dirs.push(env.HOME);
  return env;
}

async function newTarget(): Promise<Target> {
  const target = await Target.start();
  targets.push(target);
  return target;
}

/** The header record a receiver's framework would hand the library (node joins duplicates with ", "). */
function headerRecord(rawHeaders: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    record[name] = name in record ? `${record[name]}, ${rawHeaders[i + 1]!}` : rawHeaders[i + 1]!;
  }
  return record;
}

type Verdict = { ok: true } | { ok: false; reason: string };

/** What a receiver using the `standardwebhooks` library concludes about a request. */
function libraryVerdict(secret: string, request: Received): Verdict {
  try {
    new Webhook(secret).verify(request.body, headerRecord(request.rawHeaders), { jsonParse: false });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

/** The Standard Webhooks v1 check done by hand over the exact body bytes (what the library cannot do for non-UTF-8). */
function byteVerdict(secret: string, request: Received, nowMs = Date.now()): Verdict {
  const [id, timestamp, signature] = ["webhook-id", "webhook-timestamp", "webhook-signature"].map((name) =>
    headerValues(request.rawHeaders, name),
  );
  if (id!.length !== 1 || timestamp!.length !== 1 || signature!.length !== 1)
    return { ok: false, reason: "not exactly one of each header" };
  if (Math.abs(Math.floor(nowMs / 1000) - Number(timestamp![0])) > TOLERANCE_S) return { ok: false, reason: "timestamp outside tolerance" };
  const expected = hmac(secret, id![0]!, Number(timestamp![0]), request.body);
  return signature![0]!.split(" ").includes(expected) ? { ok: true } : { ok: false, reason: "no matching signature" };
}

function hmac(secret: string, id: string, timestampSeconds: number, body: Buffer): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestampSeconds}.`).update(body).digest("base64")}`;
}

/** A target that answers 200 when the request verifies with `secret`, 401 otherwise, and records each verdict. */
function verifyingTarget(target: Target, secret: string, check: typeof libraryVerdict = libraryVerdict): Map<Received, Verdict> {
  const verdicts = new Map<Received, Verdict>();
  target.mode = (request) => {
    const verdict = check(secret, request);
    verdicts.set(request, verdict);
    return verdict.ok ? 200 : 401;
  };
  return verdicts;
}

interface Sent {
  seq: number;
  id: string;
  body: Buffer;
  senderId: string;
  senderTimestamp: number;
}

/**
 * Sends a webhook the way a Standard Webhooks sender delivered it an hour ago: signed
 * with the sender's secret and a timestamp one hour old (the library's own sign()).
 */
async function ingestSignedAnHourAgo(
  server: ServerProcess,
  inboxId: string,
  secret: string,
  body: Buffer,
  sign = librarySign,
): Promise<Sent> {
  const senderId = `msg_${randomBytes(6).toString("hex")}`;
  const signedAt = new Date(Date.now() - HOUR_MS);
  const senderTimestamp = Math.floor(signedAt.getTime() / 1000);
  const response = await fetch(`${server.url}/h/${inboxId}/hooks`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-sender-note": "kept",
      "webhook-id": senderId,
      "webhook-timestamp": String(senderTimestamp),
      "webhook-signature": sign(secret, senderId, signedAt, body),
      // Svix's own names for the same three headers; its library reads these first.
      "svix-id": senderId,
      "svix-timestamp": String(senderTimestamp),
      "svix-signature": sign(secret, senderId, signedAt, body),
    },
    body,
  });
  expect(response.status).toBe(200);
  const ack = (await response.json()) as { seq: number; id: string };
  return { seq: ack.seq, id: ack.id, body, senderId, senderTimestamp };
}

function librarySign(secret: string, id: string, at: Date, body: Buffer): string {
  return new Webhook(secret).sign(id, at, body.toString("utf8"));
}

function byteSign(secret: string, id: string, at: Date, body: Buffer): string {
  return hmac(secret, id, Math.floor(at.getTime() / 1000), body);
}

async function committedSeq(server: ServerProcess, inbox: { id: string; token: string }): Promise<number | undefined> {
  const response = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers/forward`, {
    headers: { authorization: `Bearer ${inbox.token}` },
  });
  if (response.status === 404) return undefined;
  return ((await response.json()) as { committedSeq: number }).committedSeq;
}

/** A re-signed delivery: exactly one of each webhook-* header, ours, and the sender's other headers kept. */
function expectResigned(request: Received, sent: Sent): void {
  expect(headerValues(request.rawHeaders, "webhook-id")).toEqual([sent.id]);
  expect(headerValues(request.rawHeaders, "webhook-timestamp")).toHaveLength(1);
  expect(headerValues(request.rawHeaders, "webhook-signature")).toHaveLength(1);
  for (const svix of ["svix-id", "svix-timestamp", "svix-signature"]) expect(headerValues(request.rawHeaders, svix)).toEqual([]);
  expect(headerValues(request.rawHeaders, "x-sender-note")).toEqual(["kept"]);
  expect(headerValues(request.rawHeaders, "content-type")).toEqual(["application/json"]);
  expect(headerValues(request.rawHeaders, "x-tailhook-event-id")).toEqual([sent.id]);
  expect(request.body.equals(sent.body)).toBe(true);
}

/** An exact (unsigned) delivery: the sender's own headers, as stored. */
function expectSendersSignature(request: Received, sent: Sent, senderSecret: string): void {
  expect(headerValues(request.rawHeaders, "webhook-id")).toEqual([sent.senderId]);
  expect(headerValues(request.rawHeaders, "webhook-timestamp")).toEqual([String(sent.senderTimestamp)]);
  // The stored signature is still right over the exact bytes: only its age fails.
  expect(headerValues(request.rawHeaders, "webhook-signature")).toEqual([
    hmac(senderSecret, sent.senderId, sent.senderTimestamp, sent.body),
  ]);
}

describe("forward --sign", () => {
  it("the sender's hour-old signature fails the target's check; re-signed, every attempt passes, with a stable webhook-id", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    const secret = newSecret();
    const verdicts = verifyingTarget(target, secret);
    const sent = [
      await ingestSignedAnHourAgo(server, inbox.id, secret, Buffer.from('{"type":"invoice.paid","n":1}')),
      await ingestSignedAnHourAgo(server, inbox.id, secret, Buffer.from('{"type":"invoice.paid","n":2,"note":"é€"}')),
    ];
    const base = ["--server", server.url, "--token", inbox.token, "forward", inbox.id, "--to", `${target.url}/app`];

    // Without --sign: the exact replay carries the sender's timestamp, an hour old.
    const exact = await runCli([...base, "--on-4xx", "stop"], cli());
    expect(exact.code, exact.stderr).toBe(1);
    expect(exact.errorLines).toEqual(["tailhook: stopped: the target answered 401 to event #1 (--on-4xx stop)"]);
    expect(target.received).toHaveLength(1);
    expect(verdicts.get(target.received[0]!)).toEqual({ ok: false, reason: "Message timestamp too old" });
    expectSendersSignature(target.received[0]!, sent[0]!, secret);
    expect(await committedSeq(server, inbox)).toBe(0);

    // With --sign: the first attempt at event 2 gets a 503, so it is retried.
    target.received.length = 0;
    verdicts.clear();
    const inner = target.mode as (request: Received) => number;
    target.mode = (request) => (request.seq === 2 && request.attempt === 1 ? 503 : inner(request));
    const started = Date.now();
    spawnCli([...base, "--sign", secret], cli());
    await waitUntil(async () => (await committedSeq(server, inbox)) === 2, "events 1 and 2 committed");
    const finished = Date.now();

    expect(target.received.map((r) => [r.seq, r.attempt, r.answer])).toEqual([
      [1, 1, 200],
      [2, 1, 503],
      [2, 2, 200],
    ]);
    for (const request of target.received) {
      const event = sent[request.seq! - 1]!;
      expectResigned(request, event);
      // Every attempt verifies, the 503'd one included, and is signed at the time of that attempt.
      expect(libraryVerdict(secret, request)).toEqual({ ok: true });
      const timestamp = Number(headerValues(request.rawHeaders, "webhook-timestamp")[0]);
      expect(timestamp).toBeGreaterThanOrEqual(Math.floor(started / 1000));
      expect(timestamp).toBeLessThanOrEqual(Math.ceil(finished / 1000));
    }
    // Both attempts at event 2 carry the same webhook-id, so the receiver can dedupe.
    expect(new Set(target.forSeq(2).map((r) => headerValues(r.rawHeaders, "webhook-id")[0]))).toEqual(new Set([sent[1]!.id]));
  });
});

describe("replay --sign", () => {
  it("an exact replay fails the target's check; TAILHOOK_SIGN_SECRET or --sign (which wins) makes it pass", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    const secret = newSecret();
    const verdicts = verifyingTarget(target, secret);
    const sent = [
      await ingestSignedAnHourAgo(server, inbox.id, secret, Buffer.from('{"id":"evt_1"}')),
      await ingestSignedAnHourAgo(server, inbox.id, secret, Buffer.from('{"id":"evt_2"}')),
    ];
    const base = ["--server", server.url, "--token", inbox.token, "replay", inbox.id, "1..2", "--to", `${target.url}/app`];

    const exact = await runCli(base, cli());
    expect(exact.code).toBe(1);
    expect(exact.errorLines).toEqual(["tailhook: stopped: the target answered 401 to event #1"]);
    expect(verdicts.get(target.received[0]!)).toEqual({ ok: false, reason: "Message timestamp too old" });
    expectSendersSignature(target.received[0]!, sent[0]!, secret);

    target.received.length = 0;
    const fromEnv = await runCli(base, cli({ TAILHOOK_SIGN_SECRET: secret }));
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(target.received.map((r) => [r.seq, r.answer])).toEqual([
      [1, 200],
      [2, 200],
    ]);
    target.received.forEach((request, i) => expectResigned(request, sent[i]!));

    // --sign wins over the environment: signed with another secret, the target refuses it.
    target.received.length = 0;
    const otherSecret = newSecret();
    const flagWins = await runCli([...base, "--sign", otherSecret], cli({ TAILHOOK_SIGN_SECRET: secret }));
    expect(flagWins.code).toBe(1);
    expect(verdicts.get(target.received[0]!)).toEqual({ ok: false, reason: "No matching signature found" });
    expect(libraryVerdict(otherSecret, target.received[0]!)).toEqual({ ok: true });
  });

  it("a non-UTF-8 body is signed over its exact bytes (checked by hand: the library decodes bodies as UTF-8)", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    const secret = newSecret();
    const verdicts = verifyingTarget(target, secret, byteVerdict);
    const body = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]), randomBytes(512)]);
    expect(Buffer.from(body.toString("utf8"), "utf8").equals(body)).toBe(false);
    const sent = await ingestSignedAnHourAgo(server, inbox.id, secret, body, byteSign);
    const base = ["--server", server.url, "--token", inbox.token, "replay", inbox.id, "1", "--to", `${target.url}/app`];

    expect((await runCli(base, cli())).code).toBe(1);
    expect(verdicts.get(target.received[0]!)).toEqual({ ok: false, reason: "timestamp outside tolerance" });
    expectSendersSignature(target.received[0]!, sent, secret);

    target.received.length = 0;
    const signed = await runCli([...base, "--sign", secret], cli());
    expect(signed.code, signed.stderr).toBe(0);
    const request = target.received[0]!;
    expect(request.answer).toBe(200);
    expectResigned(request, sent);
    expect(byteVerdict(secret, request)).toEqual({ ok: true });
    // The library, given the same correct delivery, fails it: it signs body.toString().
    expect(libraryVerdict(secret, request)).toEqual({ ok: false, reason: "No matching signature found" });
  });
});

describe("--sign usage errors", () => {
  it("a secret that is not whsec_ + base64 of at least 16 bytes is refused in one line, without echoing it, and nothing is sent", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    await ingestSignedAnHourAgo(server, inbox.id, newSecret(), Buffer.from("{}"));
    const short = `whsec_${randomBytes(8).toString("base64")}`;
    const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv; line: RegExp; secret: string }> = [
      {
        args: ["--sign", "hunter2-not-a-secret"],
        line: /^tailhook: --sign: the signing secret must start with whsec_$/,
        secret: "hunter2",
      },
      { args: ["--sign", "whsec_not*base64!"], line: /^tailhook: --sign: .* standard base64$/, secret: "not*base64!" },
      { args: ["--sign", short], line: /^tailhook: --sign: .* at least 16 bytes .*got 8$/, secret: short },
      {
        args: [],
        env: { TAILHOOK_SIGN_SECRET: "whsec_a-b_c" },
        line: /^tailhook: TAILHOOK_SIGN_SECRET: .* standard base64$/,
        secret: "a-b_c",
      },
    ];
    for (const command of ["forward", "replay"]) {
      for (const { args, env, line, secret } of cases) {
        const range = command === "replay" ? ["1"] : [];
        const result = await runCli(
          ["--server", server.url, "--token", inbox.token, command, inbox.id, ...range, "--to", `${target.url}/app`, ...args],
          cli(env),
        );
        // A malformed secret is a usage error: exit 2 (docs/cli.md).
        expect(result.code, `${command} ${args.join(" ")}`).toBe(2);
        expect(result.errorLines).toHaveLength(1);
        expect(result.errorLines[0]).toMatch(line);
        expect(result.stderr).not.toContain(secret);
      }
    }
    expect(target.received).toEqual([]);
  });
});
