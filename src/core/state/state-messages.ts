/*
 * What a state stream accepts: every message a State Protocol change or control
 * message, judged by the protocol's own JSON Schema (state-protocol-schema.ts), plus
 * limits of ours that keep every (type, key) storable as an index key on both stores
 * (PostgreSQL text holds no NUL, index entries are bounded, and a lone surrogate
 * would not survive UTF-8). An append is judged whole: one bad message refuses it all.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { STATE_PROTOCOL_SCHEMA } from "./state-protocol-schema.js";

/** The only value of the `Stream-State` header we know. */
export const STATE_PROTOCOL_V1 = "v1";
export type StateProtocol = typeof STATE_PROTOCOL_V1;

export const MAX_TYPE_BYTES = 256;
export const MAX_KEY_BYTES = 1024;

/** What one accepted message does to the state. */
export type StateEntry =
  /** Sets (type, key) to this message's value, or removes it (a delete: a tombstone). */
  | { kind: "change"; type: string; key: string; deleted: boolean }
  /** Clears the whole state, as StreamDB does on `reset`. */
  | { kind: "reset" }
  /** snapshot-start / snapshot-end: boundaries for readers, no change to the state. */
  | { kind: "hint" };

export type StateJudgement = { valid: true; entries: StateEntry[] } | { valid: false; index: number; reason: string };

const SCHEMA_ID = STATE_PROTOCOL_SCHEMA.$id as string;
// strictTypes and strictRequired lint schema style (the published schema omits some "type"s); validation is standard either way.
const ajv = new Ajv({ allErrors: false, strictTypes: false, strictRequired: false });
addFormats.default(ajv, ["date-time"]);
ajv.addSchema(STATE_PROTOCOL_SCHEMA);
const validateMessage = ajv.getSchema(SCHEMA_ID)!;
// The branches, only to word a refusal: the verdict is always the whole schema's.
const validateChange = ajv.getSchema(`${SCHEMA_ID}#/definitions/ChangeMessage`)!;
const validateControl = ajv.getSchema(`${SCHEMA_ID}#/definitions/ControlMessage`)!;

const NUL = /\u0000/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface ParsedMessage {
  type?: string;
  key?: string;
  headers: { operation?: string; control?: string };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function explain(validate: ValidateFunction, value: unknown): string {
  validate(value);
  const error: ErrorObject | undefined = validate.errors?.[0];
  if (!error) return "it does not match the State Protocol schema";
  const at = error.instancePath === "" ? "the message" : error.instancePath.slice(1).replaceAll("/", ".");
  const allowed = error.keyword === "enum" ? `: one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(", ")}` : "";
  const extra = error.keyword === "additionalProperties" ? ` (${(error.params as { additionalProperty: string }).additionalProperty})` : "";
  return `${at} ${error.message ?? "is invalid"}${allowed}${extra}`;
}

/** Why the schema refuses `value`, worded for the branch the message looks like. */
function schemaReason(value: unknown): string {
  if (!isObject(value)) return "a state message must be a JSON object";
  const headers = value.headers;
  const looksLikeControl = isObject(headers) && "control" in headers && !("type" in value) && !("key" in value);
  return explain(looksLikeControl ? validateControl : validateChange, value);
}

export function nameProblem(field: "type" | "key", text: string, maxBytes: number): string | undefined {
  if (NUL.test(text)) return `${field} must not contain U+0000`;
  if (LONE_SURROGATE.test(text)) return `${field} must be well-formed Unicode (no lone surrogates)`;
  if (Buffer.byteLength(text, "utf8") > maxBytes) return `${field} must be at most ${maxBytes} bytes of UTF-8`;
  return undefined;
}

/** Judges one message's text; the reason when it is refused. */
function judgeMessage(data: Uint8Array): StateEntry | string {
  let value: unknown;
  try {
    // A Buffer sent to the SQLite writer thread arrives as a plain Uint8Array.
    value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch {
    return "a state message must be a JSON object";
  }
  if (!validateMessage(value)) return schemaReason(value);
  const message = value as ParsedMessage;
  if (message.headers.control !== undefined) return message.headers.control === "reset" ? { kind: "reset" } : { kind: "hint" };
  const type = message.type!;
  const key = message.key!;
  const problem = nameProblem("type", type, MAX_TYPE_BYTES) ?? nameProblem("key", key, MAX_KEY_BYTES);
  if (problem) return problem;
  return { kind: "change", type, key, deleted: message.headers.operation === "delete" };
}

/** Every message valid, with what each does; or the first refused one (index from 0) and why. */
export function judgeStateMessages(messages: Uint8Array[]): StateJudgement {
  const entries: StateEntry[] = [];
  for (const [index, data] of messages.entries()) {
    const entry = judgeMessage(data);
    if (typeof entry === "string") return { valid: false, index, reason: entry };
    entries.push(entry);
  }
  return { valid: true, entries };
}
