/*
 * Deduplication per inbox (`settings.dedupe`): where a request's delivery id is
 * (a header, or a JSON pointer into the body), and for how long a second delivery
 * with the same id is answered as the first instead of being appended again.
 * Parsing the settings and reading the key from a request live here; the check
 * itself runs in the store, in the transaction of the append.
 */
import { emailHeaderValue } from "./email-message.js";
import { TailhookError } from "./errors.js";
import type { CapturedRequest } from "./types.js";

/** Where each preset's sender puts its delivery id. */
export const DEDUPE_PRESETS = {
  github: { header: "x-github-delivery" },
  "standard-webhooks": { header: "webhook-id" },
  shopify: { header: "x-shopify-webhook-id" },
  "idempotency-key": { header: "idempotency-key" },
  stripe: { jsonPointer: "/id" },
  // Mail events: the message's own Message-ID header (in the body, not an HTTP header).
  "message-id": { emailHeader: "message-id" },
} as const satisfies Record<string, { header: string } | { jsonPointer: string } | { emailHeader: string }>;

export type DedupePreset = keyof typeof DEDUPE_PRESETS;

/**
 * Seven days: longer than any sender's automatic retries (Stripe retries for up to
 * 3 days, Standard Webhooks senders such as Svix for about 1-2 days, Shopify for 4
 * hours) and than GitHub's manual redelivery of recent deliveries, with margin.
 */
export const DEFAULT_DEDUPE_WINDOW_SECONDS = 7 * 24 * 3600;
/** Thirty days: how long GitHub's deliveries API and Stripe's events list keep a delivery. */
export const MAX_DEDUPE_WINDOW_SECONDS = 30 * 24 * 3600;
/** Longer ids are not taken as keys (appended as usual): no sender's id comes close. */
export const MAX_DEDUPE_KEY_LENGTH = 512;

/** The inbox's `settings.dedupe`, as stored: the preset (if any) resolved to exactly one of header / jsonPointer / emailHeader. */
export interface DedupeSettings {
  preset?: DedupePreset;
  /** A request header (matched case-insensitively; stored lower-case). */
  header?: string;
  /** An RFC 6901 JSON pointer into a JSON body, e.g. "/id". */
  jsonPointer?: string;
  /** A header of the RFC 5322 message that is the body (mail events), e.g. "message-id"; stored lower-case. */
  emailHeader?: string;
  windowSeconds: number;
}

function fail(message: string): never {
  throw new TailhookError("bad_request", message);
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Accepts a preset name ("github"), or an object with one of `preset`, `header`,
 * `jsonPointer`, `emailHeader`, and an optional `windowSeconds`.
 */
export function parseDedupeSettings(value: unknown): DedupeSettings {
  const spec = typeof value === "string" ? { preset: value } : value;
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    fail("settings.dedupe must be a preset name or an object");
  }
  const fields = spec as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!["preset", "header", "jsonPointer", "emailHeader", "windowSeconds"].includes(key)) fail(`unknown field settings.dedupe.${key}`);
  }
  const sources = ["preset", "header", "jsonPointer", "emailHeader"].filter((key) => fields[key] !== undefined);
  if (sources.length !== 1) fail("settings.dedupe needs exactly one of preset, header, jsonPointer or emailHeader");
  const windowSeconds = fields.windowSeconds ?? DEFAULT_DEDUPE_WINDOW_SECONDS;
  if (
    typeof windowSeconds !== "number" ||
    !Number.isInteger(windowSeconds) ||
    windowSeconds < 1 ||
    windowSeconds > MAX_DEDUPE_WINDOW_SECONDS
  ) {
    fail(`settings.dedupe.windowSeconds must be an integer from 1 to ${MAX_DEDUPE_WINDOW_SECONDS}`);
  }
  if (fields.preset !== undefined) {
    const preset = fields.preset;
    if (typeof preset !== "string" || !Object.hasOwn(DEDUPE_PRESETS, preset)) {
      fail(`settings.dedupe.preset must be one of ${Object.keys(DEDUPE_PRESETS).join(", ")}`);
    }
    return { preset: preset as DedupePreset, ...DEDUPE_PRESETS[preset as DedupePreset], windowSeconds };
  }
  if (fields.header !== undefined) {
    if (typeof fields.header !== "string" || !HEADER_NAME.test(fields.header)) fail("settings.dedupe.header must be a header name");
    return { header: fields.header.toLowerCase(), windowSeconds };
  }
  if (fields.emailHeader !== undefined) {
    // RFC 5322 field names: printable ASCII except ":" (the HTTP token rule is stricter, and fine here).
    if (typeof fields.emailHeader !== "string" || !HEADER_NAME.test(fields.emailHeader))
      fail("settings.dedupe.emailHeader must be a header name");
    return { emailHeader: fields.emailHeader.toLowerCase(), windowSeconds };
  }
  const pointer = fields.jsonPointer;
  if (typeof pointer !== "string" || !pointer.startsWith("/") || /~[^01]|~$/.test(pointer)) {
    fail('settings.dedupe.jsonPointer must be a JSON pointer such as "/id" (RFC 6901)');
  }
  return { jsonPointer: pointer, windowSeconds };
}

/** The window in milliseconds, as the store takes it. */
export function dedupeWindowMs(settings: DedupeSettings): number {
  return settings.windowSeconds * 1000;
}

function headerValue(rawHeaders: string[], lowerName: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === lowerName) return rawHeaders[i + 1];
  }
  return undefined;
}

function isEmailEvent(request: CapturedRequest): boolean {
  return request.annotations?.email !== undefined || headerValue(request.rawHeaders, "content-type")?.toLowerCase() === "message/rfc822";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The value at an RFC 6901 pointer, or undefined when the body is not JSON or has nothing there. */
function pointerValue(body: Uint8Array, pointer: string): unknown {
  let document: unknown;
  try {
    document = JSON.parse(utf8.decode(body));
  } catch {
    return undefined;
  }
  let current = document;
  for (const raw of pointer.slice(1).split("/")) {
    const token = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      current = current[Number(token)];
    } else if (typeof current === "object" && current !== null && Object.hasOwn(current, token)) {
      current = (current as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return current;
}

/**
 * The request's delivery id under these settings, or undefined when it carries none
 * (no such header, an empty one, a body that is not JSON, a pointer to nothing or to
 * an object): such requests are appended as usual. The key is the id itself, so a
 * reconciled event whose id is known (a GitHub GUID, a Stripe event id) dedupes
 * against the webhook delivery of the same id.
 */
export function dedupeKeyOf(settings: DedupeSettings, request: CapturedRequest): string | undefined {
  let key: string | undefined;
  if (settings.header !== undefined) {
    key = headerValue(request.rawHeaders, settings.header)?.trim();
  } else if (settings.jsonPointer !== undefined) {
    const value = pointerValue(request.body, settings.jsonPointer);
    if (typeof value === "string") key = value;
    else if (typeof value === "number" && Number.isSafeInteger(value)) key = String(value);
  } else if (settings.emailHeader !== undefined) {
    // Only mail events carry a message as body; a webhook's body is not read as one.
    if (isEmailEvent(request)) key = emailHeaderValue(request.body, settings.emailHeader);
  }
  if (key === undefined || key.length === 0 || key.length > MAX_DEDUPE_KEY_LENGTH) return undefined;
  return key;
}
