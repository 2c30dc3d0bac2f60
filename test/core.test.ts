import { describe, expect, it } from "vitest";
import {
  buildEnvelope,
  decodeEnvelopeBody,
  encodeAnnotations,
  encodeEventMeta,
  encodeEventMetaWith,
  messageJson,
} from "../dist/core/capture.js";
import { nextCursor } from "../dist/core/cursor.js";
import { formatOffset, parseOffset } from "../dist/core/offsets.js";
import { parseInboxSettings } from "../dist/core/inbox-settings.js";
import { hashToken, newEventId, newInboxId, tokenMatches } from "../dist/core/ids.js";

describe("offsets", () => {
  it("sort as strings in stream order and parse back", () => {
    const offsets = [0, 1, 9, 10, 99, 100, 123456789].map(formatOffset);
    expect([...offsets].sort()).toEqual(offsets);
    expect(parseOffset(formatOffset(42))).toEqual({ kind: "after", seq: 42 });
    expect(formatOffset(42)).toBe("0000000000000000_0000000000000042");
  });
  it("still reads the bare 16-digit offsets of tailhook 0.1", () => {
    expect(parseOffset("0000000000000042")).toEqual({ kind: "after", seq: 42 });
  });
  it("knows the sentinels and refuses what we never issued", () => {
    expect(parseOffset("-1")).toEqual({ kind: "start" });
    expect(parseOffset(undefined)).toEqual({ kind: "start" });
    expect(parseOffset("now")).toEqual({ kind: "now" });
    for (const bad of ["", "12", "abc", "-2", "0000000000000001x", "1e3", "0_1", "0000000000000000_1", "0000000000000000-0000000000000001"])
      expect(parseOffset(bad)).toBeUndefined();
  });
});

describe("envelopes", () => {
  const base = { id: "evt_x", receivedAt: 0, method: "POST", path: "/a", query: "b=1", remoteAddr: "127.0.0.1" };
  function stored(rawHeaders: string[], body: Buffer, seq: number) {
    return { seq, createdAt: 0, data: body, meta: encodeEventMeta({ ...base, rawHeaders, body }) };
  }
  it("keep UTF-8 bodies as text and everything else as base64, both exact", () => {
    const text = buildEnvelope(stored(["Content-Type", "text/plain"], Buffer.from("héllo"), 1));
    expect(text).toMatchObject({ seq: 1, bodyEncoding: "utf8", body: "héllo", contentType: "text/plain", size: 6 });
    expect(text.headers).toEqual([["Content-Type", "text/plain"]]);
    const bytes = Buffer.from([0xff, 0x00, 0xc3, 0x28]);
    const binary = buildEnvelope(stored([], bytes, 2));
    expect(binary.bodyEncoding).toBe("base64");
    expect(decodeEnvelopeBody(binary).equals(bytes)).toBe(true);
    expect(binary.contentType).toBeNull();
  });
  it("are what readers get for event messages; other messages pass through", () => {
    const event = stored(["X-A", "1", "x-a", "2"], Buffer.from("{}"), 3);
    expect(JSON.parse(messageJson(event))).toEqual(buildEnvelope(event));
    expect(messageJson({ seq: 1, createdAt: 0, data: Buffer.from('{"k":1}'), meta: null })).toBe('{"k":1}');
  });
  it("keep annotations encoded ahead of time exactly as encoded in one go", () => {
    const request = { ...base, rawHeaders: ["X-A", "1"], body: Buffer.from("{}") };
    const annotations = {
      verification: { scheme: "github", ok: true, reason: "signature matches secret 1 of 1" },
      origin: "reconciled" as const,
    };
    const inOneGo = encodeEventMeta({ ...request, annotations });
    expect(encodeEventMetaWith(request, encodeAnnotations(annotations))).toBe(inOneGo);
    expect(buildEnvelope({ seq: 4, createdAt: 0, data: request.body, meta: inOneGo })).toMatchObject(annotations);
    // No annotations (or an empty set) keep the six-element meta of a plain webhook.
    expect(encodeEventMetaWith(request, encodeAnnotations({}))).toBe(encodeEventMeta(request));
    expect(JSON.parse(encodeEventMeta(request))).toHaveLength(6);
  });
});

describe("cursors", () => {
  it("never go backwards for a client that echoes one", () => {
    const now = Date.UTC(2026, 0, 1);
    const first = nextCursor(undefined, now);
    const echoed = nextCursor(first, now);
    expect(Number(echoed)).toBeGreaterThan(Number(first));
    expect(Number(nextCursor("1", now))).toBe(Number(first));
  });
});

describe("inbox settings", () => {
  it("accept valid settings and merge a patch with null removals", () => {
    const settings = parseInboxSettings({ maxBodyBytes: 10, retention: { maxEvents: 5 } });
    expect(settings).toEqual({ maxBodyBytes: 10, retention: { maxEvents: 5 } });
    expect(parseInboxSettings({ maxBodyBytes: null }, settings)).toEqual({ retention: { maxEvents: 5 } });
  });
  it("refuse unknown keys and bad values", () => {
    expect(() => parseInboxSettings({ maxBodySize: 1 })).toThrow(/unknown field/);
    expect(() => parseInboxSettings({ maxBodyBytes: 0 })).toThrow();
    expect(() => parseInboxSettings({ response: { status: 199 } })).toThrow();
    expect(() => parseInboxSettings({ response: { headers: { "content-length": "1" } } })).toThrow();
  });
});

describe("ids and tokens", () => {
  it("inbox ids carry at least 128 random bits in URL-safe characters", () => {
    const id = newInboxId();
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(id, "base64url").length * 8).toBeGreaterThanOrEqual(128);
    expect(newInboxId()).not.toBe(id);
  });
  it("tokens match only their own hash", () => {
    const hash = hashToken("thk_secret");
    expect(tokenMatches("thk_secret", hash)).toBe(true);
    expect(tokenMatches("thk_secreT", hash)).toBe(false);
  });
});

describe("event ids", () => {
  it("are evt_ and 32 hex digits, all different, also across refills of the random pool", () => {
    const ids = Array.from({ length: 1000 }, () => newEventId());
    for (const id of ids) expect(id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
