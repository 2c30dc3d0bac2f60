/*
 * Signature verification per inbox (settings.verify), against a real server: every
 * scheme with requests signed by the providers' own libraries where they exist
 * (stripe, @octokit/webhooks-methods, standardwebhooks) and by hand with node:crypto
 * otherwise (Slack, Shopify, hmac, Ed25519, and every non-UTF-8 body, which the
 * libraries cannot sign: they decode bodies as UTF-8).
 */
import { createHmac, generateKeyPairSync, randomBytes, sign as ed25519Sign, type KeyObject } from "node:crypto";
import { isUtf8 } from "node:buffer";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { bodyBytes, readAll, type Envelope } from "./helpers/http.js";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";
import { rmSync } from "node:fs";
import { get } from "node:http";

type Headers = Record<string, string>;
type Inbox = Awaited<ReturnType<TestServer["createInbox"]>>;

let server: TestServer;
const stripe = new Stripe("sk_test_not_used_for_any_request");
const nowSeconds = () => Math.floor(Date.now() / 1000);
const EXPIRED = 600; // seconds in the past, beyond the default tolerance of 300

/** A body that is not UTF-8 (random bytes with 0xff and a lone continuation byte in it). */
function binaryBody(): Buffer {
  const body = Buffer.concat([Buffer.from([0xff, 0x80, 0x00, 0xfe]), randomBytes(256)]);
  expect(isUtf8(body)).toBe(false);
  return body;
}

const hmacOf = (algorithm: string, key: string | Buffer, ...parts: Buffer[]) => {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

function ed25519Pair(): { publicKey: string; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  return { publicKey: `whpk_${raw.toString("base64")}`, privateKey };
}

/**
 * One scheme under test: its settings' secrets (two, for rotation), how a sender signs
 * (with the provider's library when `body` is UTF-8 text, by hand otherwise), and how
 * to tamper with a signed header without touching the body.
 */
interface Scheme {
  name: string;
  settings: Record<string, unknown>;
  secrets: string[];
  wrongSecret: string;
  timestamped: boolean;
  sign(body: Buffer, secret: string, timestamp: number): Promise<Headers>;
  tamperHeader(headers: Headers): Headers;
}

const bump = (digits: string) => String(Number(digits) + 1);
// The first character: base64's last one may carry padding bits that decode to the same bytes.
const flipFirstChar = (text: string) => (text[0] === "A" ? "B" : "A") + text.slice(1);

function standardWebhooksV1(): Scheme {
  const secrets = [`whsec_${randomBytes(24).toString("base64")}`, `whsec_${randomBytes(32).toString("base64")}`];
  return {
    name: "standard-webhooks v1 (HMAC-SHA256)",
    settings: { scheme: "standard-webhooks" },
    secrets,
    wrongSecret: `whsec_${randomBytes(24).toString("base64")}`,
    timestamped: true,
    async sign(body, secret, timestamp) {
      const id = `msg_${randomBytes(8).toString("hex")}`;
      let signature: string;
      if (isUtf8(body)) signature = new Webhook(secret).sign(id, new Date(timestamp * 1000), body.toString("utf8"));
      else {
        const key = Buffer.from(secret.slice("whsec_".length), "base64");
        signature = `v1,${hmacOf("sha256", key, Buffer.from(`${id}.${timestamp}.`), body).toString("base64")}`;
      }
      return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
    },
    tamperHeader: (headers) => ({ ...headers, "webhook-id": `${headers["webhook-id"]}x` }),
  };
}

function standardWebhooksV1a(): Scheme {
  const keys = [ed25519Pair(), ed25519Pair()];
  const wrong = ed25519Pair();
  const privateKeys = new Map([...keys, wrong].map((pair) => [pair.publicKey, pair.privateKey]));
  return {
    name: "standard-webhooks v1a (Ed25519)",
    settings: { scheme: "standard-webhooks" },
    secrets: keys.map((pair) => pair.publicKey),
    wrongSecret: wrong.publicKey,
    timestamped: true,
    async sign(body, publicKey, timestamp) {
      // No library signs v1a: by hand, over the same "<id>.<timestamp>.<body>" bytes.
      const id = `msg_${randomBytes(8).toString("hex")}`;
      const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
      const signature = ed25519Sign(null, signed, privateKeys.get(publicKey)!).toString("base64");
      return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1a,${signature}` };
    },
    tamperHeader: (headers) => ({ ...headers, "webhook-timestamp": bump(headers["webhook-timestamp"]!) }),
  };
}

function stripeScheme(): Scheme {
  return {
    name: "stripe",
    settings: { scheme: "stripe" },
    secrets: [`whsec_${randomBytes(16).toString("hex")}`, `whsec_${randomBytes(16).toString("hex")}`],
    wrongSecret: `whsec_${randomBytes(16).toString("hex")}`,
    timestamped: true,
    async sign(body, secret, timestamp) {
      if (isUtf8(body)) {
        return { "stripe-signature": stripe.webhooks.generateTestHeaderString({ payload: body.toString("utf8"), secret, timestamp }) };
      }
      const signature = hmacOf("sha256", secret, Buffer.from(`${timestamp}.`), body).toString("hex");
      return { "stripe-signature": `t=${timestamp},v1=${signature}` };
    },
    tamperHeader: (headers) => ({
      ...headers,
      "stripe-signature": headers["stripe-signature"]!.replace(/^t=(\d+)/, (_, t: string) => `t=${bump(t)}`),
    }),
  };
}

function githubScheme(): Scheme {
  return {
    name: "github",
    settings: { scheme: "github" },
    secrets: [randomBytes(20).toString("hex"), randomBytes(20).toString("hex")],
    wrongSecret: randomBytes(20).toString("hex"),
    timestamped: false,
    async sign(body, secret) {
      if (isUtf8(body)) return { "x-hub-signature-256": await githubSign(secret, body.toString("utf8")) };
      return { "x-hub-signature-256": `sha256=${hmacOf("sha256", secret, body).toString("hex")}` };
    },
    tamperHeader: (headers) => {
      const value = headers["x-hub-signature-256"]!;
      return { ...headers, "x-hub-signature-256": value.slice(0, -1) + (value.endsWith("0") ? "1" : "0") };
    },
  };
}

function slackScheme(): Scheme {
  return {
    name: "slack",
    settings: { scheme: "slack" },
    secrets: [randomBytes(16).toString("hex"), randomBytes(16).toString("hex")],
    wrongSecret: randomBytes(16).toString("hex"),
    timestamped: true,
    async sign(body, secret, timestamp) {
      const signature = hmacOf("sha256", secret, Buffer.from(`v0:${timestamp}:`), body).toString("hex");
      return { "x-slack-signature": `v0=${signature}`, "x-slack-request-timestamp": String(timestamp) };
    },
    tamperHeader: (headers) => ({ ...headers, "x-slack-request-timestamp": bump(headers["x-slack-request-timestamp"]!) }),
  };
}

function shopifyScheme(): Scheme {
  return {
    name: "shopify",
    settings: { scheme: "shopify" },
    secrets: [randomBytes(16).toString("hex"), randomBytes(16).toString("hex")],
    wrongSecret: randomBytes(16).toString("hex"),
    timestamped: false,
    async sign(body, secret) {
      return { "x-shopify-hmac-sha256": hmacOf("sha256", secret, body).toString("base64") };
    },
    tamperHeader: (headers) => ({ ...headers, "x-shopify-hmac-sha256": flipFirstChar(headers["x-shopify-hmac-sha256"]!) }),
  };
}

function hmacTemplateScheme(): Scheme {
  return {
    name: "hmac (sha512, base64, prefix, {timestamp}.{body})",
    settings: {
      scheme: "hmac",
      hmac: {
        header: "X-Signature",
        algorithm: "sha512",
        encoding: "base64",
        prefix: "sha512=",
        signedContent: "{timestamp}.{body}",
        timestampHeader: "X-Timestamp",
      },
    },
    secrets: [randomBytes(16).toString("hex"), randomBytes(16).toString("hex")],
    wrongSecret: randomBytes(16).toString("hex"),
    timestamped: true,
    async sign(body, secret, timestamp) {
      const signature = hmacOf("sha512", secret, Buffer.from(`${timestamp}.`), body).toString("base64");
      return { "x-signature": `sha512=${signature}`, "x-timestamp": String(timestamp) };
    },
    tamperHeader: (headers) => ({ ...headers, "x-timestamp": bump(headers["x-timestamp"]!) }),
  };
}

function hmacBodyScheme(): Scheme {
  return {
    name: "hmac (sha1, hex, body)",
    settings: { scheme: "hmac", hmac: { header: "x-body-signature", algorithm: "sha1" } },
    secrets: [randomBytes(16).toString("hex"), randomBytes(16).toString("hex")],
    wrongSecret: randomBytes(16).toString("hex"),
    timestamped: false,
    async sign(body, secret) {
      return { "x-body-signature": hmacOf("sha1", secret, body).toString("hex") };
    },
    tamperHeader: (headers) => {
      const value = headers["x-body-signature"]!;
      return { ...headers, "x-body-signature": value.slice(0, -1) + (value.endsWith("0") ? "1" : "0") };
    },
  };
}

const SCHEMES = [
  standardWebhooksV1(),
  standardWebhooksV1a(),
  stripeScheme(),
  githubScheme(),
  slackScheme(),
  shopifyScheme(),
  hmacTemplateScheme(),
  hmacBodyScheme(),
];

async function post(inbox: Inbox, body: Buffer, headers: Headers): Promise<Response> {
  return fetch(inbox.ingestUrl, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
}

/** Posts and returns the stored event (the request must have been stored). */
async function deliver(inbox: Inbox, body: Buffer, headers: Headers): Promise<Envelope> {
  const response = await post(inbox, body, headers);
  expect(response.status).toBe(200);
  const { seq } = (await response.json()) as { seq: number };
  const event = (await (await server.admin(`/api/inboxes/${inbox.id}/events/${seq}`)).json()) as Envelope;
  expect(bodyBytes(event).equals(body)).toBe(true);
  return event;
}

function verifyInbox(scheme: Scheme, extra: Record<string, unknown> = {}): Promise<Inbox> {
  return server.createInbox({ settings: { verify: { ...scheme.settings, secrets: scheme.secrets, ...extra } } });
}

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe.each(SCHEMES)("verification: $name", (scheme) => {
  let inbox: Inbox;
  const json = () => Buffer.from(JSON.stringify({ id: `evt_${randomBytes(6).toString("hex")}`, text: "ünïcødé ✓" }));
  const [first, second] = scheme.secrets as [string, string];
  beforeAll(async () => {
    inbox = await verifyInbox(scheme);
  });

  it("accepts a valid signature and says which secret matched", async () => {
    const body = json();
    const event = await deliver(inbox, body, await scheme.sign(body, first, nowSeconds()));
    expect(event.verification).toEqual({ scheme: scheme.settings.scheme, ok: true, reason: "signature matches secret 1 of 2" });
  });

  it("accepts the rotated secret (the second one matches)", async () => {
    const body = json();
    const event = await deliver(inbox, body, await scheme.sign(body, second, nowSeconds()));
    expect(event.verification).toEqual({ scheme: scheme.settings.scheme, ok: true, reason: "signature matches secret 2 of 2" });
  });

  it("verifies a non-UTF-8 body over its raw bytes", async () => {
    const body = binaryBody();
    const event = await deliver(inbox, body, await scheme.sign(body, second, nowSeconds()));
    expect(event.bodyEncoding).toBe("base64");
    expect(event.verification).toMatchObject({ ok: true, reason: "signature matches secret 2 of 2" });
  });

  it("fails a tampered body (text and binary)", async () => {
    for (const body of [json(), binaryBody()]) {
      const headers = await scheme.sign(body, first, nowSeconds());
      const tampered = Buffer.from(body);
      tampered.writeUInt8(tampered.readUInt8(tampered.length - 2) ^ 0x01, tampered.length - 2);
      const event = await deliver(inbox, tampered, headers);
      expect(event.verification).toEqual({ scheme: scheme.settings.scheme, ok: false, reason: "signature matches none of the 2 secrets" });
    }
  });

  it("fails a tampered signed header", async () => {
    const body = json();
    const event = await deliver(inbox, body, scheme.tamperHeader(await scheme.sign(body, first, nowSeconds())));
    expect(event.verification).toMatchObject({ ok: false });
  });

  it("fails a signature made with a wrong secret", async () => {
    const body = json();
    const event = await deliver(inbox, body, await scheme.sign(body, scheme.wrongSecret, nowSeconds()));
    expect(event.verification).toEqual({ scheme: scheme.settings.scheme, ok: false, reason: "signature matches none of the 2 secrets" });
  });

  it("fails a request without the signature headers", async () => {
    const event = await deliver(inbox, json(), {});
    expect(event.verification).toMatchObject({ ok: false, reason: expect.stringMatching(/^missing .* header$/) });
  });

  // Schemes without a signed timestamp (github, shopify, hmac over the body) have no tolerance to test.
  if (!scheme.timestamped) return;

  it("fails a correctly signed request whose timestamp is outside the tolerance", async () => {
    const body = json();
    const event = await deliver(inbox, body, await scheme.sign(body, first, nowSeconds() - EXPIRED));
    expect(event.verification).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^signature matches secret 1 of 2, but the timestamp is \d+ s old \(tolerance 300 s\)$/),
    });
    const future = await deliver(inbox, body, await scheme.sign(body, first, nowSeconds() + EXPIRED));
    expect(future.verification).toMatchObject({ ok: false, reason: expect.stringMatching(/in the future/) });
  });

  it("honours a configured tolerance", async () => {
    const lenient = await verifyInbox(scheme, { toleranceSeconds: 3600 });
    const body = json();
    const event = await deliver(lenient, body, await scheme.sign(body, first, nowSeconds() - EXPIRED));
    expect(event.verification).toMatchObject({ ok: true });
  });
});

describe("the oracles agree with the requests they signed", () => {
  it("stripe, @octokit/webhooks-methods and standardwebhooks verify their own signatures over the same text", async () => {
    const body = Buffer.from('{"id":"evt_1","object":"event"}');
    const [sw, st, gh] = [SCHEMES[0]!, SCHEMES[2]!, SCHEMES[3]!];
    const swHeaders = await sw.sign(body, sw.secrets[0]!, nowSeconds());
    expect(new Webhook(sw.secrets[0]!).verify(body.toString("utf8"), swHeaders)).toMatchObject({ id: "evt_1" });
    const stHeaders = await st.sign(body, st.secrets[0]!, nowSeconds());
    expect(stripe.webhooks.constructEvent(body, stHeaders["stripe-signature"]!, st.secrets[0]!)).toMatchObject({ id: "evt_1" });
    const { verify } = await import("@octokit/webhooks-methods");
    const ghHeaders = await gh.sign(body, gh.secrets[0]!, 0);
    expect(await verify(gh.secrets[0]!, body.toString("utf8"), ghHeaders["x-hub-signature-256"]!)).toBe(true);
  });
});

describe("modes", () => {
  const github = SCHEMES[3]!;
  const sign = (body: Buffer, secret = github.secrets[0]!) => github.sign(body, secret, 0);

  it("annotate (the default) stores a failing request with ok:false and the reason", async () => {
    const inbox = await verifyInbox(github);
    const event = await deliver(inbox, Buffer.from("forged"), await sign(Buffer.from("forged"), github.wrongSecret));
    expect(event.verification).toEqual({ scheme: "github", ok: false, reason: "signature matches none of the 2 secrets" });
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(1);
  });

  it("enforce answers 401 to a failing request, stores nothing, and keeps it for the admin", async () => {
    const inbox = await verifyInbox(github, { mode: "enforce" });
    const good = Buffer.from('{"ok":1}');
    expect((await post(inbox, good, await sign(good))).status).toBe(200);

    const forged = Buffer.from('{"ok":2}');
    const refused = await post(inbox, forged, { ...(await sign(forged, github.wrongSecret)), authorization: "Bearer very-secret-token" });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: { code: "unauthorized", message: "signature verification failed; nothing was stored" } });
    const big = Buffer.alloc(8192, 0x61);
    expect((await post(inbox, big, {})).status).toBe(401);

    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => bodyBytes(event).toString())).toEqual(['{"ok":1}']);
    expect(events[0]!.verification).toEqual({ scheme: "github", ok: true, reason: "signature matches secret 1 of 2" });

    const log = await server.admin(`/api/inboxes/${inbox.id}/verification`);
    expect(log.status).toBe(200);
    const view = (await log.json()) as { verify: Record<string, unknown>; refused: number; recent: Array<Record<string, unknown>> };
    expect(view.verify).toMatchObject({ scheme: "github", mode: "enforce", secrets: 2 });
    expect(view.refused).toBe(2);
    expect(view.recent).toHaveLength(2);
    const [newest, older] = view.recent as [Record<string, unknown>, Record<string, unknown>];
    expect(newest).toMatchObject({ reason: "missing x-hub-signature-256 header", method: "POST", size: 8192 });
    expect(newest.body).toBeUndefined(); // large bodies are not kept
    expect(older).toMatchObject({
      reason: "signature matches none of the 2 secrets",
      size: forged.length,
      body: '{"ok":2}',
      bodyEncoding: "utf8",
    });
    expect(older.headers).toContainEqual(["authorization", "(masked)"]);
    expect(JSON.stringify(view)).not.toContain("very-secret-token");

    // Only the admin sees it.
    expect(
      (await fetch(`${server.url}/api/inboxes/${inbox.id}/verification`, { headers: { authorization: `Bearer ${inbox.token}` } })).status,
    ).toBe(401);
  });

  it("enforce checks before dedupe: a forged request claims no delivery id, and the genuine one is stored, then deduped", async () => {
    const inbox = await server.createInbox({
      settings: { verify: { ...github.settings, secrets: github.secrets, mode: "enforce" }, dedupe: { header: "X-Delivery" } },
    });
    const body = Buffer.from('{"delivery":"d-1"}');
    const forged = await post(inbox, body, { ...(await sign(body, github.wrongSecret)), "x-delivery": "d-1" });
    expect(forged.status).toBe(401);
    const genuine = await post(inbox, body, { ...(await sign(body)), "x-delivery": "d-1" });
    expect(genuine.status).toBe(200);
    const first = (await genuine.json()) as { id: string; seq: number };
    expect(first.seq).toBe(1);
    const repeat = await post(inbox, body, { ...(await sign(body)), "x-delivery": "d-1" });
    expect(await repeat.json()).toEqual({ ok: true, id: first.id, seq: 1 });
    // Checked before dedupe, a forgery of a delivery already seen is refused, not answered as that duplicate.
    expect((await post(inbox, body, { ...(await sign(body, github.wrongSecret)), "x-delivery": "d-1" })).status).toBe(401);
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => event.verification)).toEqual([{ scheme: "github", ok: true, reason: "signature matches secret 1 of 2" }]);
  });

  it("keeps at most the last 20 refused requests per inbox, and counts them all", async () => {
    const inbox = await verifyInbox(github, { mode: "enforce" });
    for (let i = 0; i < 23; i++) expect((await post(inbox, Buffer.from(`{"n":${i}}`), {})).status).toBe(401);
    const view = (await (await server.admin(`/api/inboxes/${inbox.id}/verification`)).json()) as {
      refused: number;
      recent: Array<{ body: string }>;
    };
    expect(view.refused).toBe(23);
    expect(view.recent.map((entry) => JSON.parse(entry.body).n)).toEqual(Array.from({ length: 20 }, (_, i) => 22 - i));
  });
});

describe("secrets are write-only", () => {
  it("never appear in create, get, list, patch or verification replies; PATCH without secrets keeps them", async () => {
    const scheme = SCHEMES[0]!;
    const create = await server.admin("/api/inboxes", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: { verify: { scheme: "standard-webhooks", secrets: scheme.secrets } } }),
    });
    const created = (await create.json()) as Inbox & { settings: { verify: Record<string, unknown> } };
    expect(created.settings.verify).toEqual({ scheme: "standard-webhooks", secrets: 2, mode: "annotate", toleranceSeconds: 300 });
    const patch = await server.admin(`/api/inboxes/${created.id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: { verify: { scheme: "standard-webhooks", mode: "enforce" } } }),
    });
    expect(patch.status).toBe(200);
    const replies = [
      JSON.stringify(created),
      await patch.text(),
      await (await server.admin(`/api/inboxes/${created.id}`)).text(),
      await (await fetch(`${server.url}/api/inboxes/${created.id}`, { headers: { authorization: `Bearer ${created.token}` } })).text(),
      await (await server.admin("/api/inboxes")).text(),
      await (await server.admin(`/api/inboxes/${created.id}/verification`)).text(),
    ];
    for (const reply of replies) {
      for (const secret of scheme.secrets) {
        expect(reply).not.toContain(secret);
        expect(reply).not.toContain(secret.slice("whsec_".length));
      }
    }
    expect(JSON.parse(replies[1]!).settings.verify).toEqual({
      scheme: "standard-webhooks",
      secrets: 2,
      mode: "enforce",
      toleranceSeconds: 300,
    });
    // The kept secrets still verify, now enforcing.
    const body = Buffer.from('{"kept":true}');
    expect((await post(created, body, await scheme.sign(body, scheme.secrets[1]!, nowSeconds()))).status).toBe(200);
    expect((await post(created, body, await scheme.sign(body, scheme.wrongSecret, nowSeconds()))).status).toBe(401);
  });

  it("refuses settings it cannot verify with", async () => {
    const { publicKey } = ed25519Pair();
    const bad = [
      { scheme: "standard-webhooks", secrets: ["not-a-whsec"] },
      { scheme: "standard-webhooks", secrets: [publicKey.replace("whpk_", "whsk_")] },
      { scheme: "standard-webhooks", secrets: ["whpk_AAAA"] },
      { scheme: "github", secrets: [] },
      { scheme: "github" },
      { scheme: "nope", secrets: ["x"] },
      { scheme: "github", secrets: ["x"], mode: "strict" },
      { scheme: "github", secrets: ["x"], toleranceSeconds: 0 },
      { scheme: "github", secrets: ["x"], hmac: { header: "x" } },
      { scheme: "hmac", secrets: ["x"] },
      { scheme: "hmac", secrets: ["x"], hmac: { header: "x-sig", signedContent: "{timestamp}.{body}" } },
      { scheme: "hmac", secrets: ["x"], hmac: { header: "x-sig", signedContent: "no body here" } },
      { scheme: "hmac", secrets: ["x"], hmac: { header: "x-sig", algorithm: "md5" } },
    ];
    for (const verify of bad) {
      const response = await server.admin("/api/inboxes", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ settings: { verify } }),
      });
      expect(response.status, JSON.stringify(verify)).toBe(400);
    }
  });
});

describe("the verdict is part of every read and survives a restart", () => {
  it("catch-up, SSE and WebSocket reads carry it, before and after a restart", async () => {
    const dataDir = tempDir();
    const scheme = SCHEMES[4]!; // slack
    let restartable = await startTestServer({}, { dataDir });
    try {
      const created = await restartable.createInbox({ settings: { verify: { scheme: "slack", secrets: scheme.secrets } } });
      const good = binaryBody();
      const bad = Buffer.from('{"forged":true}');
      for (const [body, secret] of [
        [good, scheme.secrets[0]!],
        [bad, scheme.wrongSecret],
      ] as const) {
        const response = await fetch(created.ingestUrl, { method: "POST", body, headers: await scheme.sign(body, secret, nowSeconds()) });
        expect(response.status).toBe(200);
      }
      const expected = [
        { scheme: "slack", ok: true, reason: "signature matches secret 1 of 2" },
        { scheme: "slack", ok: false, reason: "signature matches none of the 2 secrets" },
      ];
      const readEverything = async () => {
        // Port 0: the restarted server listens elsewhere.
        const streamUrl = `${restartable.url}/v1/stream/inbox/${created.id}`;
        const catchUp = (await readAll(streamUrl, created.token)).events;
        const sse = await readSseEvents(`${streamUrl}?offset=-1&live=sse&token=${created.token}`, 2);
        const ws: Envelope[] = await readWebSocketEvents(
          `${restartable.url.replace(/^http/, "ws")}/v1/ws/inbox/${created.id}?offset=-1&token=${created.token}`,
          2,
        );
        return { catchUp, sse, ws };
      };
      for (const round of ["before", "after"]) {
        if (round === "after") {
          await restartable.close();
          restartable = await startTestServer({}, { dataDir });
        }
        const reads = await readEverything();
        for (const events of [reads.catchUp, reads.sse, reads.ws]) {
          expect(
            events.map((event) => event.verification),
            round,
          ).toEqual(expected);
          expect(bodyBytes(events[0]!).equals(good)).toBe(true);
        }
      }
    } finally {
      await restartable.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Reads a live SSE response until `count` events came, then drops the connection. */
function readSseEvents(url: string, count: number): Promise<Envelope[]> {
  return new Promise((resolve, reject) => {
    const request = get(url, (response) => {
      expect(response.statusCode).toBe(200);
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
        const events = text
          .slice(0, text.lastIndexOf("\n\n") + 2)
          .split("\n\n")
          .filter((block) => block.startsWith("event: data"))
          .flatMap(
            (block) =>
              JSON.parse(
                block
                  .split("\n")
                  .filter((line) => line.startsWith("data:"))
                  .map((line) => line.slice(5).replace(/^ /, ""))
                  .join("\n"),
              ) as Envelope[],
          );
        if (events.length >= count) {
          request.destroy();
          resolve(events);
        }
      });
    });
    request.on("error", reject); // also fires after destroy(), when it is already resolved
  });
}

function readWebSocketEvents(url: string, count: number): Promise<Envelope[]> {
  return new Promise((resolve, reject) => {
    const events: Envelope[] = [];
    const socket = new WebSocket(url);
    socket.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string; event?: Envelope };
      if (frame.type === "event") events.push(frame.event!);
      if (events.length === count) socket.close();
    });
    socket.on("error", reject);
    // Resolved once closed, so the server has nothing of this reader left when it stops.
    socket.on("close", () =>
      events.length >= count ? resolve(events) : reject(new Error(`WebSocket closed after ${events.length} events`)),
    );
  });
}
