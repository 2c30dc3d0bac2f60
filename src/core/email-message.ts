/*
 * Reading an RFC 5322 message's header block without a MIME parser: the lines up to
 * the first empty one, continuation lines unfolded. Pure and cheap, for the dedupe key
 * (Message-ID) of mail events; the full parsed view is mailparser's job at read time.
 */

/** The header block ends at the first empty line (CRLF CRLF, or bare LF LF as some senders write). */
function headerBlockEnd(message: Uint8Array): number {
  for (let i = 0; i < message.length; i++) {
    if (message[i] !== 0x0a) continue;
    const next = message[i + 1];
    if (next === 0x0a) return i;
    if (next === 0x0d && message[i + 2] === 0x0a) return i;
  }
  // A message of headers only (or an empty one): all of it is header.
  return message.length;
}

/**
 * The unfolded value of the first header named `name` (case-insensitive), trimmed, or
 * undefined when the message has none. Bytes are read as Latin-1, so 8-bit header
 * bytes round-trip as one character each and never throw.
 */
export function emailHeaderValue(message: Uint8Array, name: string): string | undefined {
  const wanted = name.toLowerCase();
  const block = Buffer.from(message.buffer, message.byteOffset, headerBlockEnd(message)).toString("latin1");
  const lines = block.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0 || /^[ \t]/.test(line)) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== wanted) continue;
    let value = line.slice(colon + 1);
    // Unfolding (RFC 5322 §2.2.3): a line starting with white space continues the previous one.
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) value += lines[++i];
    return value.trim();
  }
  return undefined;
}
