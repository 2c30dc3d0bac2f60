/* The pure parts of state streams: the schema copy, message judging, index planning, cursors, raw values. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { planKeyIndex, valueSeqAsOf } from "../dist/core/state/key-index.js";
import { rawMember } from "../dist/core/state/raw-json.js";
import { formatSnapshotCursor, parseSnapshotCursor, snapshotInsert } from "../dist/core/state/snapshot.js";
import { judgeStateMessages } from "../dist/core/state/state-messages.js";
import { STATE_PROTOCOL_SCHEMA } from "../dist/core/state/state-protocol-schema.js";

const require = createRequire(import.meta.url);

describe("the State Protocol schema copy", () => {
  it("is the published schema of the pinned @durable-streams/state, except that upsert is admitted", () => {
    const published = JSON.parse(
      readFileSync(join(dirname(require.resolve("@durable-streams/state/package.json")), "state-protocol.schema.json"), "utf8"),
    ) as {
      definitions: Record<string, { properties?: Record<string, { enum?: string[] }>; enum?: string[]; allOf?: unknown[] }>;
    };
    const ours = structuredClone(STATE_PROTOCOL_SCHEMA) as typeof published;
    const definitions = ours.definitions;
    expect(definitions.ChangeHeaders!.properties!.operation!.enum).toEqual(["insert", "update", "delete", "upsert"]);
    expect(definitions.Operation!.enum).toEqual(["insert", "update", "delete", "upsert"]);
    definitions.ChangeHeaders!.properties!.operation!.enum!.pop();
    definitions.Operation!.enum!.pop();
    expect(definitions.ChangeMessage!.allOf!.pop()).toEqual({
      if: { properties: { headers: { properties: { operation: { const: "upsert" } } } } },
      then: { required: ["value"] },
    });
    expect(ours).toEqual(published);
  });
});

describe("judging state messages", () => {
  const message = (value: unknown) => Buffer.from(JSON.stringify(value));

  it("says what each valid message does", () => {
    const judged = judgeStateMessages([
      message({ type: "user", key: "1", value: { name: "a" }, headers: { operation: "insert" } }),
      message({ type: "user", key: "1", headers: { operation: "delete" } }),
      message({ headers: { control: "reset" } }),
      message({ headers: { control: "snapshot-end", offset: "x" } }),
    ]);
    expect(judged).toEqual({
      valid: true,
      entries: [
        { kind: "change", type: "user", key: "1", deleted: false },
        { kind: "change", type: "user", key: "1", deleted: true },
        { kind: "reset" },
        { kind: "hint" },
      ],
    });
  });

  it("names the first refused message and the rule", () => {
    const judged = judgeStateMessages([
      message({ type: "user", key: "1", value: 1, headers: { operation: "upsert" } }),
      message({ type: "user", key: "1", headers: { operation: "replace" } }),
    ]);
    expect(judged).toMatchObject({ valid: false, index: 1 });
    expect(judged.valid ? "" : judged.reason).toMatch(/operation.*one of insert, update, delete, upsert/);
  });
});

describe("the key index plan", () => {
  it("keeps the last change per key as latest and sends earlier ones of the same append to history", () => {
    const plan = planKeyIndex(
      [
        { kind: "change", type: "t", key: "a", deleted: false },
        { kind: "change", type: "t", key: "b", deleted: false },
        { kind: "reset" },
        { kind: "change", type: "t", key: "a", deleted: true },
      ],
      10,
    );
    expect(plan).toEqual({
      latest: [
        { type: "t", key: "a", seq: 14, deleted: true },
        { type: "t", key: "b", seq: 12, deleted: false },
      ],
      superseded: [{ type: "t", key: "a", seq: 11, deleted: false }],
      resets: [13],
    });
  });

  it("finds a key's value as of X from its latest or superseded entry, after the last reset", () => {
    const key = { type: "t", key: "a", seq: 20, deleted: false, before: { seq: 7, deleted: false } };
    expect(valueSeqAsOf(key, 25, 0)).toBe(20);
    expect(valueSeqAsOf(key, 10, 0)).toBe(7);
    expect(valueSeqAsOf(key, 10, 8)).toBeUndefined();
    expect(valueSeqAsOf({ ...key, before: undefined }, 10, 0)).toBeUndefined();
    expect(valueSeqAsOf({ ...key, before: { seq: 7, deleted: true } }, 10, 0)).toBeUndefined();
  });
});

describe("snapshot cursors and messages", () => {
  it("round-trips a cursor and refuses anything else", () => {
    const position = { streamId: 3, asOfSeq: 99, after: { type: "user", key: "k/ü" } };
    const cursor = formatSnapshotCursor(position);
    expect(cursor).toMatch(/^snapshot:[A-Za-z0-9_-]+$/);
    // A state stream's cursor has no key frame version: it reads as 0.
    expect(parseSnapshotCursor(cursor)).toEqual({ ...position, keyFrameVersion: 0 });
    // An inbox stream's cursor names the version of its keyFrame (docs/key-frames.md, "Inbox key frames").
    const inbox = { ...position, keyFrameVersion: 2 };
    expect(parseSnapshotCursor(formatSnapshotCursor(inbox))).toEqual(inbox);
    expect(parseSnapshotCursor(`snapshot:${Buffer.from('[1,3,99,"a","b",-1]').toString("base64url")}`)).toBeUndefined();
    expect(parseSnapshotCursor("snapshot:xyz")).toBeUndefined();
    expect(parseSnapshotCursor(`snapshot:${Buffer.from('[2,3,99,"a","b"]').toString("base64url")}`)).toBeUndefined();
  });

  it("carries a value byte for byte (big numbers, escapes, key order), the last of duplicate members", () => {
    const data = Buffer.from(
      '{ "type" : "t", "key":"k", "value" : {"b":1,"a":12345678901234567890123,"s":"\\u00e9\\"}"} , "headers":{"operation":"update"}}',
    );
    expect(rawMember(data, "value")?.toString()).toBe('{"b":1,"a":12345678901234567890123,"s":"\\u00e9\\"}"}');
    expect(rawMember(Buffer.from('{"value":1,"value":[2, 3]}'), "value")?.toString()).toBe("[2, 3]");
    expect(rawMember(Buffer.from('{"key":"x","headers":{}}'), "value")).toBeUndefined();
    expect(snapshotInsert({ type: "t", key: "k", seq: 1, data, meta: null, createdAt: 0 }).toString()).toBe(
      '{"type":"t","key":"k","value":{"b":1,"a":12345678901234567890123,"s":"\\u00e9\\"}"},"headers":{"operation":"insert"}}',
    );
  });
});
