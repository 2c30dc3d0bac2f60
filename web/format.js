// Pure formatting: body bytes, hex dumps, "copy as curl", times and rates.

/** The exact body bytes from an envelope (utf8 text or base64). */
export function bodyBytes(envelope) {
  if (envelope.bodyEncoding === "base64") {
    const binary = atob(envelope.body ?? "");
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }
  return new TextEncoder().encode(envelope.body ?? "");
}

export function isJsonType(contentType) {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  return type === "application/json" || type.endsWith("+json");
}

/** How the body is best shown: "json" (pretty), "text" or "hex". */
export function bodyKind(envelope) {
  if (envelope.bodyEncoding === "base64") return "hex";
  if (isJsonType(envelope.contentType) || /^\s*[{[]/.test(envelope.body ?? "")) {
    try {
      JSON.parse(envelope.body);
      return "json";
    } catch {
      return "text";
    }
  }
  return "text";
}

export function prettyJson(text) {
  return JSON.stringify(JSON.parse(text), null, 2);
}

const hex2 = (n) => n.toString(16).padStart(2, "0");

/** 16 bytes a line: offset, hex, printable ASCII. */
export function hexDump(bytes, limit = 64 * 1024) {
  const lines = [];
  const end = Math.min(bytes.length, limit);
  for (let at = 0; at < end; at += 16) {
    const row = bytes.subarray(at, Math.min(at + 16, end));
    const hex = Array.from(row, hex2).join(" ").padEnd(47, " ");
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${at.toString(16).padStart(8, "0")}  ${hex}  ${ascii}`);
  }
  if (bytes.length > end) lines.push(`… ${bytes.length - end} more bytes (download to see all)`);
  return lines.join("\n");
}

/** A POSIX-shell single-quoted word. */
export function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

// Set by curl itself, or meaningless on a new connection.
const CURL_SKIPS = new Set(["host", "content-length", "connection", "transfer-encoding", "expect", "keep-alive", "te", "upgrade"]);

/**
 * The request again as a curl command line to `targetBase` (the inbox's ingest URL by
 * default) plus the event's sub-path and query. Text bodies go as --data-raw; bodies with
 * control characters or invalid UTF-8 go through printf's octal escapes (POSIX
 * printf, so any sh), byte for byte.
 */
export function curlCommand(envelope, targetBase) {
  const url = `${targetBase}${envelope.path ?? ""}${envelope.query ? `?${envelope.query}` : ""}`;
  const parts = ["curl", "-X", envelope.method, shellQuote(url)];
  const headers = envelope.headers ?? [];
  for (const [name, value] of headers) {
    if (!CURL_SKIPS.has(name.toLowerCase())) parts.push("-H", shellQuote(`${name}: ${value}`));
  }
  const bytes = bodyBytes(envelope);
  if (bytes.length === 0) return parts.join(" ");
  const printableText = envelope.bodyEncoding !== "base64" && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(envelope.body);
  if (printableText) return `${parts.join(" ")} --data-raw ${shellQuote(envelope.body)}`;
  const octal = Array.from(bytes, (b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
  return `printf '${octal}' | ${parts.join(" ")} --data-binary @-`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** Events per minute between two receive times `count` events apart. */
export function formatRate(count, fromIso, toIso) {
  if (count < 1 || !fromIso || !toIso) return "—";
  const minutes = (new Date(toIso).getTime() - new Date(fromIso).getTime()) / 60000;
  if (minutes <= 0) return `${count + 1} in under a second`;
  const perMinute = count / minutes;
  return perMinute >= 10 ? `${Math.round(perMinute)}/min` : `${perMinute.toFixed(2)}/min`;
}

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}
