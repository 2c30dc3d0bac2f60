/*
 * The exact text of one member of a JSON object, without parsing the object: a
 * snapshot hands out each key's value as it was appended (big numbers, key order and
 * escapes intact), as reads of the log do. The input was validated when appended.
 */
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function skipWhitespace(text: Buffer, at: number): number {
  while (at < text.length && WHITESPACE.has(text[at]!)) at++;
  return at;
}

/** The index just after the string that opens at `at`. */
function stringEnd(text: Buffer, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    if (text[i] === BACKSLASH) i++;
    else if (text[i] === QUOTE) return i + 1;
  }
  return text.length;
}

/** The index just after the JSON value that starts at `at`. */
function valueEnd(text: Buffer, at: number): number {
  const first = text[at];
  if (first === QUOTE) return stringEnd(text, at);
  if (first !== 0x7b && first !== 0x5b) {
    let i = at;
    while (i < text.length && !WHITESPACE.has(text[i]!) && text[i] !== 0x2c && text[i] !== 0x7d && text[i] !== 0x5d) i++;
    return i;
  }
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const byte = text[i]!;
    if (byte === QUOTE) i = stringEnd(text, i) - 1;
    else if (byte === 0x7b || byte === 0x5b) depth++;
    else if ((byte === 0x7d || byte === 0x5d) && --depth === 0) return i + 1;
  }
  return text.length;
}

/** The raw text of the object's member `name` (the last one, as JSON.parse keeps), if present. */
export function rawMember(object: Buffer, name: string): Buffer | undefined {
  let found: Buffer | undefined;
  let at = skipWhitespace(object, 0) + 1; // past "{"
  for (;;) {
    at = skipWhitespace(object, at);
    if (at >= object.length || object[at] !== QUOTE) return found;
    const nameEnd = stringEnd(object, at);
    const member = JSON.parse(object.subarray(at, nameEnd).toString("utf8")) as string;
    const start = skipWhitespace(object, skipWhitespace(object, nameEnd) + 1); // past ":"
    const end = valueEnd(object, start);
    if (member === name) found = object.subarray(start, end);
    at = skipWhitespace(object, end);
    if (object[at] !== 0x2c) return found;
    at++;
  }
}
