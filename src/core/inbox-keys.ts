/*
 * Inbox key frames (docs/key-frames.md, "Inbox key frames"): the `keyFrame` setting
 * says where the entity of an event lives, so that the inbox's stream keeps the same
 * key index as a state stream and answers `offset=snapshot` with the latest event per
 * entity. This file validates the setting, resolves presets to one normal form (the
 * definition the index is built with) and finds the (type, key) of an event.
 */
import { fail, isObject, onlyKeys } from "./setting-checks.js";
import { isSendableHeaderName } from "./header-text.js";
import { MAX_KEY_BYTES, MAX_TYPE_BYTES, nameProblem } from "./state/state-messages.js";

/** One place the entity id may be: a JSON pointer, optionally naming the entity type it means. */
export interface KeyPointer {
  pointer: string;
  type?: string;
}

/** The setting as an inbox stores and shows it. */
export type KeyFrameSetting =
  | { preset: KeyFramePreset }
  | { key: Array<string | KeyPointer>; type?: string | { value: string } }
  | { header: string; type?: string | { value: string } };

export type KeyFramePreset = "stripe" | "github";

/** The normal form the index is built with: equal definitions never reset the index. */
export interface KeyFrameDefinition {
  /** Where the id is: body pointers (the first that exists wins), or a header (lower case). */
  keys: KeyPointer[];
  header?: string;
  /** Where the type is when a key pointer names none: a pointer, or a fixed value; absent: "". */
  type?: { pointer: string } | { value: string };
}

const MAX_POINTERS = 16;

export const KEY_FRAME_PRESETS: Record<KeyFramePreset, KeyFrameDefinition> = {
  // Every Stripe event carries the object it is about under data.object, with its kind in `object`.
  stripe: { keys: [{ pointer: "/data/object/id" }], type: { pointer: "/data/object/object" } },
  // GitHub payloads name their subject by event: pull_request, issues/issue_comment, check_run.
  github: {
    keys: [
      { pointer: "/pull_request/id", type: "pull_request" },
      { pointer: "/issue/id", type: "issue" },
      { pointer: "/check_run/id", type: "check_run" },
    ],
  },
};

/** RFC 6901: "" (the whole body) or "/"-separated tokens where "~" only escapes as ~0 or ~1. */
function parsePointer(value: unknown, where: string): string {
  if (typeof value !== "string" || (value !== "" && !value.startsWith("/")) || /~(?![01])/.test(value)) {
    fail(`${where} must be a JSON pointer (RFC 6901), e.g. "/data/object/id"`);
  }
  if (value.length > 1024) fail(`${where} must be at most 1024 characters`);
  return value;
}

function parseTypeName(value: unknown, where: string): string {
  if (typeof value !== "string" || value === "") fail(`${where} must be a non-empty string`);
  const problem = nameProblem("type", value, MAX_TYPE_BYTES);
  if (problem) fail(`${where}: ${problem}`);
  return value;
}

function parseKeyPointer(value: unknown, where: string): string | KeyPointer {
  if (typeof value === "string") return parsePointer(value, where);
  if (!isObject(value)) fail(`${where} must be a JSON pointer or {"pointer": ..., "type": ...}`);
  onlyKeys(value, ["pointer", "type"], where);
  const pointer = parsePointer(value.pointer, `${where}.pointer`);
  return value.type === undefined ? { pointer } : { pointer, type: parseTypeName(value.type, `${where}.type`) };
}

function parseType(value: unknown, where: string): string | { value: string } {
  if (typeof value === "string") return parsePointer(value, where);
  if (!isObject(value)) fail(`${where} must be a JSON pointer or {"value": "<fixed type>"}`);
  onlyKeys(value, ["value"], where);
  return { value: parseTypeName(value.value, `${where}.value`) };
}

/** Validates settings.keyFrame from untrusted JSON. */
export function parseKeyFrameSetting(value: unknown): KeyFrameSetting {
  const where = "settings.keyFrame";
  if (!isObject(value)) fail(`${where} must be an object: {"preset": "stripe" | "github"}, {"key": [pointers]} or {"header": name}`);
  if ("preset" in value) {
    onlyKeys(value, ["preset"], where);
    if (value.preset !== "stripe" && value.preset !== "github") fail(`${where}.preset must be "stripe" or "github"`);
    return { preset: value.preset };
  }
  onlyKeys(value, ["key", "header", "type"], where);
  const type = value.type === undefined ? undefined : parseType(value.type, `${where}.type`);
  const withType = <T extends object>(setting: T) => (type === undefined ? setting : { ...setting, type });
  if (value.key !== undefined && value.header !== undefined) fail(`${where} takes either key or header, not both`);
  if (value.header !== undefined) {
    if (typeof value.header !== "string" || !isSendableHeaderName(value.header)) fail(`${where}.header must be a header name`);
    return withType({ header: value.header });
  }
  if (!Array.isArray(value.key) || value.key.length === 0 || value.key.length > MAX_POINTERS) {
    fail(`${where}.key must be a list of 1 to ${MAX_POINTERS} JSON pointers (or a header: ${where}.header)`);
  }
  return withType({ key: value.key.map((entry, index) => parseKeyPointer(entry, `${where}.key[${index}]`)) });
}

/** The definition a setting means; null without a setting. */
export function keyFrameDefinition(setting: KeyFrameSetting | undefined): KeyFrameDefinition | null {
  if (setting === undefined) return null;
  if ("preset" in setting) return KEY_FRAME_PRESETS[setting.preset];
  const definition: KeyFrameDefinition = { keys: [] };
  if ("header" in setting) definition.header = setting.header.toLowerCase();
  else definition.keys = setting.key.map((entry) => (typeof entry === "string" ? { pointer: entry } : entry));
  if (setting.type !== undefined) definition.type = typeof setting.type === "string" ? { pointer: setting.type } : setting.type;
  return definition;
}

/** The text stored with the stream (streams.key_frame): a change of it resets the index. */
export function keyFrameText(setting: KeyFrameSetting | undefined): string | null {
  const definition = keyFrameDefinition(setting);
  return definition && JSON.stringify(definition);
}

const MISSING = Symbol("missing");

function resolvePointer(document: unknown, pointer: string): unknown {
  if (pointer === "") return document;
  let at: unknown = document;
  for (const raw of pointer.slice(1).split("/")) {
    const token = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(at) && /^(0|[1-9][0-9]*)$/.test(token) && Number(token) < at.length) at = at[Number(token)];
    else if (isObject(at) && Object.hasOwn(at, token)) at = at[token];
    else return MISSING;
  }
  return at;
}

/** An id as a key: a string as it is, an integer (exactly representable) as its decimal digits. */
function asKey(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

function usable(text: string | undefined, field: "type" | "key", maxBytes: number): string | undefined {
  if (text === undefined || (field === "key" && text === "")) return undefined;
  return nameProblem(field, text, maxBytes) === undefined ? text : undefined;
}

export interface EventSource {
  body: Uint8Array;
  rawHeaders: string[];
}

function parseBody(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch {
    return MISSING;
  }
}

function headerValue(rawHeaders: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) return rawHeaders[i + 1];
  return undefined;
}

/** The entity of an event, or undefined when it has none (it is then a delta only). */
export function entityOf(definition: KeyFrameDefinition, event: EventSource): { type: string; key: string } | undefined {
  let document: unknown;
  let parsed = false;
  const body = () => (parsed ? document : ((parsed = true), (document = parseBody(event.body))));
  let id: unknown = MISSING;
  let fixedType: string | undefined;
  if (definition.header !== undefined) id = headerValue(event.rawHeaders, definition.header) ?? MISSING;
  for (const entry of definition.keys) {
    id = resolvePointer(body(), entry.pointer);
    fixedType = entry.type;
    if (id !== MISSING) break;
  }
  const key = usable(id === MISSING ? undefined : asKey(id), "key", MAX_KEY_BYTES);
  if (key === undefined) return undefined;
  let type = fixedType ?? "";
  if (fixedType === undefined && definition.type !== undefined) {
    if ("value" in definition.type) type = definition.type.value;
    else {
      const found = resolvePointer(body(), definition.type.pointer);
      if (typeof found !== "string" || found === "") return undefined;
      type = found;
    }
  }
  return usable(type, "type", MAX_TYPE_BYTES) === undefined ? undefined : { type, key };
}
