/*
 * JSON mode: a body is one JSON value, and a top-level array is flattened one level
 * into one message per element. Each message keeps the exact text it was sent as
 * (no re-serialisation: big numbers, key order and escapes survive), so the body is
 * validated with JSON.parse and then split at the array's top-level commas.
 */
import { TailhookError } from "../../core/errors.js";

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

function trimmed(text: Buffer, start: number, end: number): Buffer {
  while (start < end && WHITESPACE.has(text[start]!)) start++;
  while (end > start && WHITESPACE.has(text[end - 1]!)) end--;
  return text.subarray(start, end);
}

/** The byte ranges of a valid JSON array's elements. */
function splitArray(text: Buffer, open: number, close: number): Buffer[] {
  const elements: Buffer[] = [];
  let depth = 0;
  let inString = false;
  let start = open + 1;
  for (let i = open + 1; i < close; i++) {
    const byte = text[i]!;
    if (inString) {
      if (byte === 0x5c)
        i++; // backslash: skip the escaped character
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) depth++;
    else if (byte === 0x5d || byte === 0x7d) depth--;
    else if (byte === 0x2c && depth === 0) {
      elements.push(trimmed(text, start, i));
      start = i + 1;
    }
  }
  const last = trimmed(text, start, close);
  if (last.length > 0 || elements.length > 0) elements.push(last);
  return elements;
}

/** The messages of a JSON-mode body; 400 for invalid JSON. An empty array gives none. */
export function jsonMessages(body: Buffer): Buffer[] {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new TailhookError("bad_request", `the body is not valid JSON: ${(error as Error).message}`);
  }
  const whole = trimmed(body, 0, body.length);
  if (!Array.isArray(value)) return [whole];
  return splitArray(whole, 0, whole.length - 1);
}
