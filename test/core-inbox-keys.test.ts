/* The entity of an event under an inbox's keyFrame (core/inbox-keys.ts): pointers, presets, what gives no key. */
import { describe, expect, it } from "vitest";
import { entityOf, keyFrameDefinition, keyFrameText, parseKeyFrameSetting } from "../dist/core/inbox-keys.js";

const event = (body: unknown, rawHeaders: string[] = []) => ({
  body: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
  rawHeaders,
});
const definitionOf = (setting: unknown) => keyFrameDefinition(parseKeyFrameSetting(setting))!;

describe("inbox keys", () => {
  it("resolves RFC 6901 pointers: ~1 and ~0 escapes, array indexes, the whole body", () => {
    const definition = definitionOf({ key: ["/a~1b/~0c", "/list/1/id"], type: { value: "t" } });
    expect(entityOf(definition, event({ "a/b": { "~c": "x" } }))).toEqual({ type: "t", key: "x" });
    expect(entityOf(definition, event({ list: [{ id: 1 }, { id: 2 }] }))).toEqual({ type: "t", key: "2" });
    expect(entityOf(definition, event({ list: [{ id: 1 }] }))).toBeUndefined();
    expect(entityOf(definition, event({ list: { 1: { id: "object member, not an index" } } }))).toEqual({
      type: "t",
      key: "object member, not an index",
    });
    expect(entityOf(definitionOf({ key: [""] }), event('"whole"'))).toEqual({ type: "", key: "whole" });
  });

  it("presets: Stripe's data.object, GitHub's pull request, issue or check run", () => {
    const stripe = definitionOf({ preset: "stripe" });
    expect(entityOf(stripe, event({ data: { object: { id: "cus_1", object: "customer" } } }))).toEqual({ type: "customer", key: "cus_1" });
    expect(entityOf(stripe, event({ data: { object: { id: "cus_1" } } }))).toBeUndefined();
    const github = definitionOf({ preset: "github" });
    expect(entityOf(github, event({ pull_request: { id: 7 }, issue: { id: 8 } }))).toEqual({ type: "pull_request", key: "7" });
    expect(entityOf(github, event({ issue: { id: 8 }, comment: { id: 9 } }))).toEqual({ type: "issue", key: "8" });
    expect(entityOf(github, event({ check_run: { id: 25_000_000_001 } }))).toEqual({ type: "check_run", key: "25000000001" });
    expect(entityOf(github, event({ zen: "ping" }))).toBeUndefined();
  });

  it("gives no key for ids that are not strings or exact integers, over-long keys, or a key with U+0000", () => {
    const definition = definitionOf({ key: ["/id"] });
    for (const id of [1.5, 2 ** 60, null, true, [1], { a: 1 }, "", "k".repeat(1025), "a\u0000b"]) {
      expect(entityOf(definition, event({ id })), JSON.stringify(id)).toBeUndefined();
    }
    expect(entityOf(definition, event({ id: -3 }))).toEqual({ type: "", key: "-3" });
    expect(entityOf(definition, event("{not json"))).toBeUndefined();
  });

  it("reads a header key in any case, from a body that need not be JSON unless the type is a pointer", () => {
    const fixed = definitionOf({ header: "X-Entity-Id", type: { value: "order" } });
    expect(entityOf(fixed, event("plain text", ["x-ENTITY-id", "o-1", "X-Entity-Id", "o-2"]))).toEqual({ type: "order", key: "o-1" });
    const pointed = definitionOf({ header: "X-Entity-Id", type: "/kind" });
    expect(entityOf(pointed, event("plain text", ["X-Entity-Id", "o-1"]))).toBeUndefined();
    expect(entityOf(pointed, event({ kind: "order" }, ["X-Entity-Id", "o-1"]))).toEqual({ type: "order", key: "o-1" });
  });

  it("normal forms: a preset written out is the same definition; another is not", () => {
    expect(keyFrameText(parseKeyFrameSetting({ key: ["/data/object/id"], type: "/data/object/object" }))).toBe(
      keyFrameText({ preset: "stripe" }),
    );
    expect(keyFrameText({ key: ["/data/object/id"] })).not.toBe(keyFrameText({ preset: "stripe" }));
    expect(keyFrameText(undefined)).toBeNull();
  });
});
