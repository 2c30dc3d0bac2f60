import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createPublicKey, verify } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { matchGlob } from "../dist/subscriptions/glob.js";
import { normalizeStreamPath } from "../dist/subscriptions/stream-paths.js";
import { checkWebhookUrl, isPublicAddress } from "../dist/subscriptions/webhook-url.js";
import {
  createSigningKey,
  jwkSet,
  jwkThumbprint,
  signatureHeader,
  signingKeyFromRecord,
  signingKeyToRecord,
} from "../dist/subscriptions/signing.js";
import { configHash, parseStreamList, parseSubscriptionConfig, parseWakeRequest } from "../dist/subscriptions/requests.js";
import {
  applyAcks,
  BEFORE_FIRST_OFFSET,
  checkWakeRequest,
  claimWake,
  deliveryFailed,
  deliverySucceeded,
  expireLease,
  extendLease,
  finishWithSnapshot,
  issueWake,
  linkExplicit,
  linkViews,
  needsWake,
  newSubscription,
  nextDeadline,
  observeAppends,
  retryDelayMs,
  subscriptionStatus,
  unlinkExplicit,
  wakeStreamViews,
  type Subscription,
} from "../dist/subscriptions/subscription-state.js";
import { decodeSubscription, encodeSubscription, encodeTombstone } from "../dist/subscriptions/records.js";
import { postJson, repliedDone } from "../dist/subscriptions/delivery.js";
import { formatOffset } from "../dist/core/offsets.js";
import { hashToken } from "../dist/core/ids.js";
import { startTestServer, tempDir } from "./helpers/server.js";

const policy = { allowLocalhost: true };
const offset = (seq: number) => formatOffset(seq);

function config(body: Record<string, unknown>) {
  const parsed = parseSubscriptionConfig(body, policy);
  if (!parsed.ok) throw new Error(`${parsed.code}: ${parsed.message}`);
  return parsed.value;
}

function subscription(body: Record<string, unknown>, existing: Array<{ path: string; tailOffset: string }> = []): Subscription {
  const parsed = config(body);
  return newSubscription({
    id: "sub-1",
    config: parsed,
    configHash: configHash(parsed),
    createdAt: "2026-01-01T00:00:00.000Z",
    generation: 0,
    existing,
    explicitTails: new Map(existing.map((stream) => [stream.path, stream.tailOffset])),
  });
}

const pullBody = { type: "pull-wake", pattern: "events/*", wake_stream: "wake/pool", lease_ttl_ms: 1000 };
const hookBody = { type: "webhook", pattern: "events/*", webhook: { url: "https://hooks.example.com/x" }, lease_ttl_ms: 1000 };
const tokenHash = (token: string) => hashToken(token).toString("hex");

describe("subscription globs", () => {
  it("match * as exactly one segment and ** as zero or more", () => {
    expect(matchGlob("events/*", "events/a")).toBe(true);
    expect(matchGlob("events/*", "events/a/b")).toBe(false);
    expect(matchGlob("events/*", "events")).toBe(false);
    expect(matchGlob("events/**", "events")).toBe(true);
    expect(matchGlob("events/**", "events/a/b/c")).toBe(true);
    expect(matchGlob("**/logs", "a/b/logs")).toBe(true);
    expect(matchGlob("**/logs", "logs")).toBe(true);
    expect(matchGlob("a/**/z", "a/z")).toBe(true);
    expect(matchGlob("a/**/z", "a/b/c/z")).toBe(true);
    expect(matchGlob("a/**/z", "a/b/c/y")).toBe(false);
    expect(matchGlob("**", "anything/at/all")).toBe(true);
  });
  it("treat anything else, partial stars included, literally", () => {
    expect(matchGlob("events/a*", "events/abc")).toBe(false);
    expect(matchGlob("events/a*", "events/a*")).toBe(true);
    expect(matchGlob("events/a", "events/a")).toBe(true);
    expect(matchGlob("events/a", "events/b")).toBe(false);
  });
});

describe("stream paths", () => {
  it("are normalized and never name the reserved __ds space", () => {
    expect(normalizeStreamPath("/events/a/")).toBe("events/a");
    for (const bad of ["", "/", "__ds", "__ds/subscriptions/x", "a//b", "a/../b", 42, null]) {
      expect(normalizeStreamPath(bad)).toBeUndefined();
    }
  });
});

describe("webhook URLs", () => {
  const accepted = (url: string) => checkWebhookUrl(url, policy).ok;
  it("accept https to public hosts and the localhost development exception", () => {
    expect(accepted("https://hooks.example.com/path?q=1")).toBe(true);
    expect(accepted("https://8.8.8.8/")).toBe(true);
    expect(accepted("https://[2606:4700::1111]/")).toBe(true);
    expect(accepted("http://localhost:8080/hook")).toBe(true);
    expect(accepted("http://127.0.0.1:9/hook")).toBe(true);
    expect(accepted("http://127.0.0.42/")).toBe(true);
    expect(accepted("https://localhost/")).toBe(true);
  });
  it("reject plain http elsewhere, private and local targets, and other schemes", () => {
    for (const url of [
      "http://hooks.example.com/",
      "https://10.0.0.1/",
      "http://10.0.0.1/hook",
      "https://172.16.5.4/",
      "https://192.168.1.1/",
      "https://169.254.169.254/latest/meta-data",
      "https://127.0.1.1/",
      "https://0.0.0.0/",
      "https://100.64.0.1/",
      "https://[::1]/",
      "https://[fe80::1]/",
      "https://[fd00::1]/",
      "https://[::ffff:10.0.0.1]/",
      "https://167772161/", // 10.0.0.1 spelt as a number, which URL normalizes
      "https://0x0a000001/",
      "https://intranet/",
      "https://printer.local/",
      "https://api.localhost/",
      "ftp://hooks.example.com/",
      "file:///etc/passwd",
      "not a url",
    ]) {
      const check = checkWebhookUrl(url, policy);
      expect(check.ok, url).toBe(false);
    }
  });
  it("can turn the development exception off", () => {
    expect(checkWebhookUrl("http://127.0.0.1/", { allowLocalhost: false }).ok).toBe(false);
  });
  it("tell public addresses from the rest", () => {
    expect(isPublicAddress("93.184.216.34")).toBe(true);
    expect(isPublicAddress("2001:4860:4860::8888")).toBe(true);
    for (const address of [
      "127.0.0.1",
      "10.1.2.3",
      "172.31.255.255",
      "192.168.0.1",
      "169.254.1.1",
      "::1",
      "::",
      "fc00::1",
      "fe80::1",
      "::ffff:192.168.0.1",
      "224.0.0.1",
      "not-an-ip",
    ]) {
      expect(isPublicAddress(address), address).toBe(false);
    }
  });
});

describe("webhook signing", () => {
  it("derives the kid from the RFC 7638 thumbprint (RFC 8037 test vector)", () => {
    expect(jwkThumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  });
  it("signs t.body so that a receiver verifies it with the published JWK", () => {
    const key = createSigningKey();
    expect(key.kid).toMatch(/^ds_[A-Za-z0-9_-]{43}$/);
    const [jwk] = jwkSet([key]).keys;
    expect(jwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: key.kid });
    expect(JSON.stringify(jwk)).not.toContain('"d"');
    const body = '{"hello":"world"}';
    const header = signatureHeader(key, body, 1_700_000_000);
    const match = /^t=(\d+),kid=([^,]+),ed25519=([A-Za-z0-9_-]+)$/.exec(header)!;
    expect(match[1]).toBe("1700000000");
    expect(match[2]).toBe(key.kid);
    const publicKey = createPublicKey({ key: jwk as unknown as import("node:crypto").JsonWebKey, format: "jwk" });
    expect(verify(null, Buffer.from(`1700000000.${body}`), publicKey, Buffer.from(match[3]!, "base64url"))).toBe(true);
    expect(verify(null, Buffer.from(`1700000001.${body}`), publicKey, Buffer.from(match[3]!, "base64url"))).toBe(false);
  });
  it("survives a round trip through its record with the same kid", () => {
    const key = createSigningKey();
    const again = signingKeyFromRecord(signingKeyToRecord(key));
    expect(again.kid).toBe(key.kid);
    expect(again.publicJwk).toEqual(key.publicJwk);
  });
});

describe("subscription requests", () => {
  it("fill in defaults and normalize, so equivalent configs hash alike", () => {
    const a = config({ type: "webhook", pattern: "/events/*/", streams: ["b", "a", "/a"], webhook: { url: "https://x.example.com/" } });
    expect(a).toMatchObject({ pattern: "events/*", streams: ["a", "b"], leaseTtlMs: 30_000, description: null, wakeStream: null });
    const b = config({
      type: "webhook",
      pattern: "events/*",
      streams: ["a", "b"],
      webhook: { url: "https://x.example.com/" },
      lease_ttl_ms: 30_000,
    });
    expect(configHash(a)).toBe(configHash(b));
    const c = config({
      type: "webhook",
      pattern: "events/*",
      streams: ["a", "b"],
      webhook: { url: "https://x.example.com/" },
      description: "x",
    });
    expect(configHash(c)).not.toBe(configHash(a));
  });
  it("refuse what the protocol forbids, with its error codes", () => {
    const code = (body: unknown) => {
      const parsed = parseSubscriptionConfig(body, policy);
      return parsed.ok ? "ok" : parsed.code;
    };
    expect(code({ type: "webhook", webhook: { url: "https://x.example.com/" } })).toBe("INVALID_REQUEST");
    expect(code({ type: "webhook", pattern: "e/*", webhook: { url: "http://10.0.0.1/hook" } })).toBe("WEBHOOK_URL_REJECTED");
    expect(code({ type: "webhook", pattern: "e/*" })).toBe("INVALID_REQUEST");
    expect(code({ type: "pull-wake", pattern: "e/*" })).toBe("INVALID_REQUEST");
    expect(code({ type: "pull-wake", pattern: "e/*", wake_stream: "w", streams: ["w"] })).toBe("INVALID_REQUEST");
    expect(code({ type: "smoke-signal", pattern: "e/*" })).toBe("INVALID_REQUEST");
    expect(code({ ...pullBody, lease_ttl_ms: 999 })).toBe("INVALID_REQUEST");
    expect(code({ ...pullBody, lease_ttl_ms: 600_001 })).toBe("INVALID_REQUEST");
    expect(code({ ...pullBody, lease_ttl_ms: 1500.5 })).toBe("INVALID_REQUEST");
    expect(code({ ...pullBody, lease_ttl_ms: 600_000 })).toBe("ok");
    expect(code({ ...pullBody, pattern: "__ds/*" })).toBe("INVALID_REQUEST");
    expect(code([])).toBe("INVALID_REQUEST");
  });
  it("read stream lists and wake requests strictly", () => {
    expect(parseStreamList(["x", "/x/"], false)).toEqual({ ok: true, value: ["x"] });
    expect(parseStreamList([], false).ok).toBe(false);
    expect(parseStreamList(["__ds/x"], false).ok).toBe(false);
    expect(parseWakeRequest({ wake_id: "w", generation: 3, acks: [{ path: "/a/", offset: "1" }] })).toEqual({
      ok: true,
      value: { wakeId: "w", generation: 3, acks: [{ stream: "a", offset: "1" }], done: false },
    });
    expect(parseWakeRequest({ wake_id: "w", generation: "3" }).ok).toBe(false);
    expect(parseWakeRequest({ generation: 3 }).ok).toBe(false);
    expect(parseWakeRequest({ wake_id: "w", generation: 3, acks: [{ stream: "a" }] }).ok).toBe(false);
  });
});

describe("subscription state", () => {
  it("links existing streams at their tail and later ones before their first message", () => {
    const sub = subscription({ ...pullBody, streams: ["manual/a"] }, [
      { path: "events/old", tailOffset: offset(5) },
      { path: "other/x", tailOffset: offset(2) },
    ]);
    expect(linkViews(sub)).toEqual([
      { path: "events/old", link_type: "glob", acked_offset: offset(5) },
      { path: "manual/a", link_type: "explicit", acked_offset: BEFORE_FIRST_OFFSET },
    ]);
    const later = observeAppends(sub, [
      { path: "events/new", tailOffset: offset(1), created: true },
      { path: "wake/pool", tailOffset: offset(1), created: false },
      { path: "other/y", tailOffset: offset(1), created: true },
    ]);
    expect(later.links["events/new"]).toEqual({ explicit: false, ackedOffset: BEFORE_FIRST_OFFSET });
    expect(later.links["wake/pool"]).toBeUndefined();
    expect(later.links["other/y"]).toBeUndefined();
    // A stream created anew under a linked path starts over.
    expect(observeAppends(sub, [{ path: "events/old", tailOffset: offset(1), created: true }]).links["events/old"]!.ackedOffset).toBe(
      BEFORE_FIRST_OFFSET,
    );
    // Nothing to change: the very same value comes back, so nothing is written.
    expect(observeAppends(later, [{ path: "events/new", tailOffset: offset(2), created: false }])).toBe(later);
  });

  it("adds and removes explicit links without losing a glob link", () => {
    const sub = subscription(pullBody, [{ path: "events/a", tailOffset: offset(3) }]);
    const added = linkExplicit(sub, ["events/a", "manual/b"], new Map([["manual/b", offset(7)]]));
    expect(added.links).toEqual({
      "events/a": { explicit: true, ackedOffset: offset(3) },
      "manual/b": { explicit: true, ackedOffset: offset(7) },
    });
    const removed = unlinkExplicit(unlinkExplicit(added, "events/a"), "manual/b");
    expect(removed.links).toEqual({ "events/a": { explicit: false, ackedOffset: offset(3) } });
    expect(unlinkExplicit(removed, "absent")).toBe(removed);
  });

  it("wakes only when idle with pending work, one generation per wake", () => {
    const sub = subscription(pullBody, [{ path: "events/a", tailOffset: offset(3) }]);
    expect(needsWake(sub, new Map([["events/a", offset(3)]]))).toBe(false);
    const tails = new Map([["events/a", offset(4)]]);
    expect(needsWake(sub, tails)).toBe(true);
    const woken = issueWake(sub, tails, 1000, { wakeId: "w_1", tokenHash: null });
    expect(woken.generation).toBe(1);
    expect(woken.wake).toMatchObject({
      wakeId: "w_1",
      snapshot: { "events/a": offset(4) },
      holder: null,
      delivery: { attempts: 0, nextAttemptAt: 1000 },
    });
    expect(needsWake(woken, tails)).toBe(false);
    expect(nextDeadline(woken, false)).toBe(1000);
    expect(nextDeadline(woken, true)).toBeUndefined();
  });

  it("lets one worker claim, fences the others, and frees the lease when it runs out", () => {
    const sub = subscription(pullBody, [{ path: "events/a", tailOffset: offset(3) }]);
    const tails = new Map([["events/a", offset(5)]]);
    expect(claimWake(sub, "w1", new Map([["events/a", offset(3)]]), 0, { wakeId: "w_x", tokenHash: "00" })).toEqual({
      status: "no_pending_work",
    });
    const claim = claimWake(sub, "w1", tails, 10_000, { wakeId: "w_1", tokenHash: tokenHash("secret") });
    if (claim.status !== "claimed") throw new Error(claim.status);
    const held = claim.subscription;
    expect(held.wake).toMatchObject({ holder: "w1", leaseExpiresAt: 11_000, delivery: null });
    expect(wakeStreamViews(held)).toEqual([
      { path: "events/a", link_type: "glob", acked_offset: offset(3), tail_offset: offset(5), has_pending: true },
    ]);
    expect(claimWake(held, "w2", tails, 10_500, { wakeId: "w_2", tokenHash: "00" })).toEqual({
      status: "already_claimed",
      holder: "w1",
      generation: 1,
    });
    const request = { wakeId: "w_1", generation: 1, acks: [], done: false };
    expect(checkWakeRequest(held, request, hashToken("secret"))).toBe("ok");
    expect(checkWakeRequest(held, request, hashToken("guess"))).toBe("token_invalid");
    expect(checkWakeRequest(held, { ...request, generation: 0 }, hashToken("secret"))).toBe("fenced");
    expect(checkWakeRequest(held, { ...request, wakeId: "w_0" }, hashToken("secret"))).toBe("fenced");
    // A heartbeat extends the lease; expiry frees the subscription and fences the old token.
    const beat = extendLease(held, 10_900);
    expect(expireLease(beat, 11_000)).toBe(beat);
    const expired = expireLease(beat, 11_900);
    expect(expired.wake).toBeNull();
    expect(checkWakeRequest(expired, request, hashToken("secret"))).toBe("fenced");
    expect(needsWake(expired, tails)).toBe(true);
  });

  it("applies acks all or nothing, never backwards or past the tail", () => {
    const sub = subscription({ ...pullBody, streams: ["manual/b"] }, [
      { path: "events/a", tailOffset: offset(3) },
      { path: "manual/b", tailOffset: offset(1) },
    ]);
    const tails = new Map([
      ["events/a", offset(6)],
      ["manual/b", offset(2)],
    ]);
    const ok = applyAcks(
      sub,
      [
        { stream: "events/a", offset: offset(5) },
        { stream: "manual/b", offset: offset(2) },
      ],
      tails,
    );
    expect(ok.ok && ok.subscription.links["events/a"]!.ackedOffset).toBe(offset(5));
    expect(applyAcks(sub, [{ stream: "events/a", offset: offset(7) }], tails).ok).toBe(false);
    expect(applyAcks(sub, [{ stream: "events/a", offset: offset(2) }], tails).ok).toBe(false);
    expect(applyAcks(sub, [{ stream: "nope", offset: offset(1) }], tails).ok).toBe(false);
    const mixed = applyAcks(
      sub,
      [
        { stream: "events/a", offset: offset(5) },
        { stream: "manual/b", offset: offset(9) },
      ],
      tails,
    );
    expect(mixed.ok).toBe(false);
    expect(sub.links["events/a"]!.ackedOffset).toBe(offset(3));
  });

  it("retries webhook deliveries with backoff, reports failed meanwhile, and auto-acks the snapshot on done", () => {
    const sub = subscription(hookBody, [{ path: "events/a", tailOffset: offset(1) }]);
    const woken = issueWake(sub, new Map([["events/a", offset(2)]]), 0, { wakeId: "w_1", tokenHash: "ab" });
    expect(subscriptionStatus(woken)).toBe("active");
    const failed = deliveryFailed(woken, "w_1", 5_000, () => 0.5);
    expect(failed.wake!.delivery).toEqual({ attempts: 1, nextAttemptAt: 6_000 });
    expect(subscriptionStatus(failed)).toBe("failed");
    expect(deliveryFailed(failed, "w_other", 5_000, () => 0.5)).toBe(failed);
    const accepted = deliverySucceeded(failed, "w_1", 7_000);
    expect(accepted.wake).toMatchObject({ delivery: null, leaseExpiresAt: 8_000 });
    expect(subscriptionStatus(accepted)).toBe("active");
    const done = finishWithSnapshot(accepted);
    expect(done.wake).toBeNull();
    expect(done.links["events/a"]!.ackedOffset).toBe(offset(2));
  });

  it("spaces retries from 1 s doubling to 60 s, within 20% jitter", () => {
    expect(retryDelayMs(1, () => 0.5)).toBe(1_000);
    expect(retryDelayMs(1, () => 0)).toBe(800);
    expect(retryDelayMs(1, () => 1)).toBe(1_200);
    expect(retryDelayMs(4, () => 0.5)).toBe(8_000);
    expect(retryDelayMs(7, () => 0.5)).toBe(60_000);
    expect(retryDelayMs(500, () => 1)).toBe(72_000);
  });

  it("keep their records readable, tombstones included", () => {
    const sub = issueWake(subscription(hookBody), new Map(), 0, { wakeId: "w_1", tokenHash: "ab" });
    const decoded = decodeSubscription(encodeSubscription(sub));
    expect(decoded).toEqual({ kind: "live", subscription: sub });
    expect(decodeSubscription(encodeTombstone("sub-1", 4, "2026-01-01T00:00:00.000Z"))).toEqual({
      kind: "deleted",
      id: "sub-1",
      generation: 4,
      deletedAt: "2026-01-01T00:00:00.000Z",
    });
    expect(() => decodeSubscription('{"v":2}')).toThrow();
  });
});

describe("webhook delivery", () => {
  it("reads done from the reply", () => {
    expect(repliedDone('{"done":true}')).toBe(true);
    expect(repliedDone('{"done":"true"}')).toBe(false);
    expect(repliedDone("")).toBe(false);
  });

  it("posts to a local receiver, and refuses names that resolve to loopback outside the development exception", async () => {
    const bodies: string[] = [];
    const receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        bodies.push(body);
        response.writeHead(302, { location: "http://169.254.169.254/" }).end('{"done":true}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const { port } = receiver.address() as AddressInfo;
    try {
      const options = { headers: {}, timeoutMs: 2000, signal: new AbortController().signal, loopbackAllowed: true };
      const posted = await postJson(new URL(`http://localhost:${port}/hook`), '{"a":1}', options);
      // Redirects are answers, never followed.
      expect(posted).toEqual({ kind: "response", status: 302, body: '{"done":true}' });
      expect(bodies).toEqual(['{"a":1}']);
      const refused = await postJson(new URL(`http://localhost:${port}/hook`), "{}", { ...options, loopbackAllowed: false });
      expect(refused.kind).toBe("error");
      expect(bodies).toHaveLength(1);
    } finally {
      receiver.close();
    }
  });

  it("gives up on a receiver that does not answer in time", async () => {
    const receiver = createServer(() => {});
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const { port } = receiver.address() as AddressInfo;
    try {
      const outcome = await postJson(new URL(`http://127.0.0.1:${port}/`), "{}", {
        headers: {},
        timeoutMs: 200,
        signal: new AbortController().signal,
        loopbackAllowed: true,
      });
      // Ended by our own timeout, not by the receiver or the test's.
      expect(outcome).toEqual({ kind: "error", message: "no reply within 200 ms" });
    } finally {
      receiver.closeAllConnections();
      receiver.close();
    }
  });
});

/*
 * End to end, against a real tailhook (open mode) over its real store: what the
 * conformance suite does not cover — restarts, retries, forged and late callbacks.
 */
describe("subscriptions over HTTP", () => {
  interface Receiver {
    url: string;
    requests: Array<{ body: Record<string, unknown>; raw: string; signature: string | undefined; at: number }>;
    close(): Promise<void>;
  }

  /** A webhook receiver that answers each request with the next of `replies` (the last one repeats). */
  async function startReceiver(replies: Array<{ status: number; body: unknown }>): Promise<Receiver> {
    const requests: Receiver["requests"] = [];
    const server = createServer((request, response) => {
      let raw = "";
      request.on("data", (chunk) => (raw += chunk));
      request.on("end", () => {
        const signature = request.headers["webhook-signature"];
        requests.push({
          body: JSON.parse(raw) as Record<string, unknown>,
          raw,
          signature: typeof signature === "string" ? signature : undefined,
          at: Date.now(),
        });
        const reply = replies[Math.min(requests.length - 1, replies.length - 1)]!;
        response.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/hook`,
      requests,
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  /** Resolves with the probe's first value that is neither undefined nor false. */
  function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
    return vi.waitFor(
      async () => {
        const value = await probe();
        if (value === undefined || value === false) throw new Error(`timed out after ${timeoutMs} ms`);
        return value;
      },
      { timeout: timeoutMs, interval: 25 },
    );
  }

  function client(base: () => string) {
    return async (method: string, path: string, body?: unknown, token?: string) => {
      const response = await fetch(`${base()}/v1/stream/${path}`, {
        method,
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON: the assertions check its shape
      return { status: response.status, body: (text === "" ? null : JSON.parse(text)) as Record<string, any> };
    };
  }

  it("outside open mode, needs authorization to manage and claim, but only the wake token to ack", async () => {
    const server = await startTestServer();
    const call = (method: string, path: string, body?: unknown, token?: string) => client(() => server.url)(method, path, body, token);
    try {
      const body = { type: "pull-wake", streams: ["auth/a"], wake_stream: "wake/auth" };
      expect((await call("PUT", "__ds/subscriptions/auth", body)).status).toBe(401);
      expect((await call("GET", "__ds/subscriptions/auth")).status).toBe(401);
      expect((await call("GET", "__ds/jwks.json")).status).toBe(200);
      expect((await call("PUT", "wake/auth", [], server.adminToken)).status).toBe(201);
      expect((await call("PUT", "__ds/subscriptions/auth", body, server.adminToken)).status).toBe(201);
      expect((await call("PUT", "auth/a", { n: 1 }, server.adminToken)).status).toBe(201);
      expect((await call("POST", "__ds/subscriptions/auth/claim", { worker: "w" })).status).toBe(401);
      const claim = await waitFor(async () => {
        const response = await call("POST", "__ds/subscriptions/auth/claim", { worker: "w" }, server.adminToken);
        return response.status === 200 ? response.body : undefined;
      });
      const ack = await call(
        "POST",
        "__ds/subscriptions/auth/ack",
        { wake_id: claim.wake_id, generation: claim.generation, done: true },
        claim.token,
      );
      expect(ack.status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it("keeps subscriptions, cursors, leases and the signing key across a restart", async () => {
    const dataDir = tempDir();
    let server = await startTestServer({ open: true }, { dataDir });
    const call = client(() => server.url);
    try {
      expect((await call("PUT", "wake/restart", [])).status).toBe(201);
      const created = await call("PUT", "__ds/subscriptions/restart", {
        type: "pull-wake",
        pattern: "jobs/*",
        wake_stream: "wake/restart",
        lease_ttl_ms: 60_000,
      });
      expect(created.status).toBe(201);
      expect((await call("PUT", "jobs/a", { n: 1 })).status).toBe(201);
      await waitFor(async () => ((await call("GET", "wake/restart")).body as unknown as unknown[]).length > 0);
      const claim = await call("POST", "__ds/subscriptions/restart/claim", { worker: "w1" });
      expect(claim.status).toBe(200);
      const tail = claim.body.streams.find((stream: { path: string }) => stream.path === "jobs/a").tail_offset;
      const kid = (await call("GET", "__ds/jwks.json")).body.keys[0].kid;

      await server.stop();
      server = await startTestServer({ open: true }, { dataDir });

      const after = await call("GET", "__ds/subscriptions/restart");
      expect(after.body.streams).toEqual([{ path: "jobs/a", link_type: "glob", acked_offset: BEFORE_FIRST_OFFSET }]);
      const busy = await call("POST", "__ds/subscriptions/restart/claim", { worker: "w2" });
      expect(busy.status).toBe(409);
      expect(busy.body.error).toMatchObject({ code: "ALREADY_CLAIMED", current_holder: "w1", generation: claim.body.generation });
      const ack = {
        wake_id: claim.body.wake_id,
        generation: claim.body.generation,
        acks: [{ stream: "jobs/a", offset: tail }],
        done: true,
      };
      expect((await call("POST", "__ds/subscriptions/restart/ack", ack, "not-the-token")).status).toBe(401);
      const acked = await call("POST", "__ds/subscriptions/restart/ack", ack, claim.body.token);
      expect(acked).toEqual({ status: 200, body: { ok: true, next_wake: false } });
      expect((await call("GET", "__ds/subscriptions/restart")).body.streams[0].acked_offset).toBe(tail);
      expect((await call("GET", "__ds/jwks.json")).body.keys.map((key: { kid: string }) => key.kid)).toContain(kid);
      expect((await call("POST", "__ds/subscriptions/restart/ack", ack, claim.body.token)).body.error.code).toBe("FENCED");
    } finally {
      await server.stop();
    }
  });

  it("retries a failing webhook with backoff, showing status failed until it gets through", async () => {
    const server = await startTestServer({ open: true });
    const call = client(() => server.url);
    const receiver = await startReceiver([
      { status: 503, body: {} },
      { status: 200, body: { done: true } },
    ]);
    try {
      const created = await call("PUT", "__ds/subscriptions/retry", {
        type: "webhook",
        pattern: "retry/*",
        webhook: { url: receiver.url },
      });
      expect(created.status).toBe(201);
      expect((await call("PUT", "retry/a", { n: 1 })).status).toBe(201);
      await waitFor(async () => (await call("GET", "__ds/subscriptions/retry")).body.status === "failed");
      await waitFor(() => receiver.requests.length >= 2, 3000);
      const [first, second] = receiver.requests;
      // First retry after 1 s ± 20%.
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(750);
      expect(second!.body.wake_id).toBe(first!.body.wake_id);
      expect(second!.body.generation).toBe(first!.body.generation);
      const jwks = (await call("GET", "__ds/jwks.json")).body;
      for (const request of receiver.requests) {
        const match = /^t=(\d+),kid=([^,]+),ed25519=([A-Za-z0-9_-]+)$/.exec(request.signature ?? "")!;
        const jwk = jwks.keys.find((key: { kid: string }) => key.kid === match[2]);
        const publicKey = createPublicKey({ key: jwk, format: "jwk" });
        expect(verify(null, Buffer.from(`${match[1]}.${request.raw}`), publicKey, Buffer.from(match[3]!, "base64url"))).toBe(true);
      }
      const tail = (second!.body.streams as Array<{ tail_offset: string }>)[0]!.tail_offset;
      await waitFor(async () => {
        const view = (await call("GET", "__ds/subscriptions/retry")).body;
        return view.status === "active" && view.streams[0].acked_offset === tail;
      });
    } finally {
      await receiver.close();
      await server.stop();
    }
  });

  it("refuses forged callbacks, and after deletion refuses all without moving cursors", async () => {
    const server = await startTestServer({ open: true });
    const call = client(() => server.url);
    const receiver = await startReceiver([{ status: 200, body: {} }]);
    try {
      await call("PUT", "__ds/subscriptions/forged", {
        type: "webhook",
        streams: ["forged/a"],
        webhook: { url: receiver.url },
        lease_ttl_ms: 60_000,
      });
      expect((await call("PUT", "forged/a", { n: 1 })).status).toBe(201);
      await waitFor(() => receiver.requests.length >= 1);
      const wake = receiver.requests[0]!.body as {
        wake_id: string;
        generation: number;
        callback_token: string;
        streams: Array<{ tail_offset: string }>;
      };
      const ack = {
        wake_id: wake.wake_id,
        generation: wake.generation,
        acks: [{ stream: "forged/a", offset: wake.streams[0]!.tail_offset }],
        done: true,
      };
      const forged = await call("POST", "__ds/subscriptions/forged/callback", ack, "dsw_forged");
      expect(forged.status).toBe(401);
      expect(forged.body.error.code).toBe("TOKEN_INVALID");
      expect((await call("POST", "__ds/subscriptions/forged/callback", ack)).status).toBe(401);
      const beyond = await call(
        "POST",
        "__ds/subscriptions/forged/callback",
        { ...ack, acks: [{ stream: "forged/a", offset: "9999999999999999_9999999999999999" }] },
        wake.callback_token,
      );
      expect(beyond.body.error.code).toBe("INVALID_OFFSET");
      const heartbeat = await call("POST", "__ds/subscriptions/forged/callback", { ...ack, acks: [], done: false }, wake.callback_token);
      expect(heartbeat).toEqual({ status: 200, body: { ok: true, next_wake: false } });
      expect((await call("DELETE", "__ds/subscriptions/forged")).status).toBe(204);
      expect((await call("DELETE", "__ds/subscriptions/forged")).status).toBe(204);
      const late = await call("POST", "__ds/subscriptions/forged/callback", ack, wake.callback_token);
      expect(late.status).toBe(404);
      expect((await call("GET", "__ds/subscriptions/forged")).status).toBe(404);
      // The same id again is a new subscription whose generations continue past the old ones.
      await call("PUT", "__ds/subscriptions/forged", { type: "webhook", streams: ["forged/a"], webhook: { url: receiver.url } });
      expect((await call("GET", "__ds/subscriptions/forged")).body.streams[0].acked_offset).toBe(wake.streams[0]!.tail_offset);
      await call("POST", "forged/a", { n: 2 });
      await waitFor(() => receiver.requests.length >= 2);
      expect(receiver.requests[1]!.body.generation).toBe(wake.generation + 1);
      expect((await call("POST", "__ds/subscriptions/forged/callback", ack, wake.callback_token)).body.error.code).toBe("FENCED");
    } finally {
      await receiver.close();
      await server.stop();
    }
  });
});
