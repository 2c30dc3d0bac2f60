/*
 * Validation of inbox settings sent to the management API. Unknown keys are refused
 * rather than ignored, so a typo never silently leaves a default in place.
 */
import { parseDedupeSettings } from "./dedupe.js";
import { fail, isObject, onlyKeys } from "./setting-checks.js";
import { isSendableHeaderName, isSendableHeaderValue } from "./header-text.js";
import type { InboxResponseSettings, InboxSettings, RetentionSettings } from "./types.js";
import { parseVerifySettings } from "./verify/settings.js";
import { parseKeyFrameSetting } from "./inbox-keys.js";

const MAX_BODY_LIMIT = 256 * 1024 * 1024;
/** A year: a sender quieter than that is not one an alarm can watch. */
const MAX_EXPECT_EVERY_SECONDS = 366 * 24 * 3600;
const FORBIDDEN_REPLY_HEADERS = new Set(["content-length", "transfer-encoding", "connection"]);
/** Replies that HTTP says carry no body (RFC 9110 §15.3.5, §15.4.5). */
export const BODYLESS_STATUSES: ReadonlySet<number> = new Set([204, 304]);

function positiveInteger(value: unknown, where: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    fail(`${where} must be an integer from 1 to ${max}`);
  }
  return value;
}

function parseResponse(value: unknown): InboxResponseSettings {
  if (!isObject(value)) fail("settings.response must be an object");
  onlyKeys(value, ["status", "headers", "body"], "settings.response");
  const status = value.status ?? 200;
  if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599) {
    fail("settings.response.status must be an integer from 200 to 599");
  }
  const headers: Record<string, string> = {};
  if (value.headers !== undefined) {
    if (!isObject(value.headers)) fail("settings.response.headers must be an object of strings");
    for (const [name, headerValue] of Object.entries(value.headers)) {
      // Exactly what node:http can send: anything else would fail every reply to this inbox.
      if (!isSendableHeaderName(name)) fail(`settings.response.headers has an invalid header name: ${JSON.stringify(name)}`);
      if (typeof headerValue !== "string" || !isSendableHeaderValue(headerValue)) {
        fail(`settings.response.headers.${name} must be a string of tab, visible ASCII, space or Latin-1 (0x80-0xff) characters`);
      }
      if (FORBIDDEN_REPLY_HEADERS.has(name.toLowerCase())) fail(`settings.response.headers may not set ${name}`);
      headers[name] = headerValue;
    }
  }
  const body = value.body ?? "";
  if (typeof body !== "string") fail("settings.response.body must be a string");
  if (body !== "" && BODYLESS_STATUSES.has(status)) fail(`settings.response.body must be empty for status ${status}`);
  return { status, headers, body };
}

function parseRetention(value: unknown): RetentionSettings {
  if (!isObject(value)) fail("settings.retention must be an object");
  onlyKeys(value, ["maxEvents", "maxAgeSeconds", "compact", "compactLag"], "settings.retention");
  const retention: RetentionSettings = {};
  if (value.maxEvents !== undefined) retention.maxEvents = positiveInteger(value.maxEvents, "settings.retention.maxEvents");
  if (value.maxAgeSeconds !== undefined) {
    retention.maxAgeSeconds = positiveInteger(value.maxAgeSeconds, "settings.retention.maxAgeSeconds");
  }
  if (value.compact !== undefined) {
    if (typeof value.compact !== "boolean") fail("settings.retention.compact must be true or false");
    if (value.compact) retention.compact = true;
  }
  if (value.compactLag !== undefined) {
    const lag = value.compactLag;
    if (typeof lag !== "number" || !Number.isSafeInteger(lag) || lag < 0 || lag > 1_000_000_000)
      fail("settings.retention.compactLag must be a whole number from 0 to 1000000000");
    retention.compactLag = lag;
  }
  return retention;
}

/** Compaction keeps the latest event per entity: without a keyFrame there are no entities. */
function checkCompaction(settings: InboxSettings): void {
  if (settings.retention?.compactLag !== undefined && !settings.retention.compact)
    fail("settings.retention.compactLag needs settings.retention.compact: true");
  if (!settings.retention?.compact) return;
  if (settings.keyFrame === undefined)
    fail("settings.retention.compact needs settings.keyFrame (compaction keeps the latest event per entity)");
}

/** Parses settings from untrusted JSON; `null` for a key removes it (PATCH). */
export function parseInboxSettings(value: unknown, base: InboxSettings = {}): InboxSettings {
  if (value === undefined) return base;
  if (!isObject(value)) fail("settings must be an object");
  onlyKeys(value, ["maxBodyBytes", "response", "retention", "dedupe", "verify", "expectEvery", "keyFrame"], "settings");
  const settings: InboxSettings = { ...base };
  if (value.maxBodyBytes === null) delete settings.maxBodyBytes;
  else if (value.maxBodyBytes !== undefined) {
    settings.maxBodyBytes = positiveInteger(value.maxBodyBytes, "settings.maxBodyBytes", MAX_BODY_LIMIT);
  }
  if (value.response === null) delete settings.response;
  else if (value.response !== undefined) settings.response = parseResponse(value.response);
  if (value.retention === null) delete settings.retention;
  else if (value.retention !== undefined) settings.retention = parseRetention(value.retention);
  if (value.dedupe === null) delete settings.dedupe;
  else if (value.dedupe !== undefined) settings.dedupe = parseDedupeSettings(value.dedupe);
  if (value.verify === null) delete settings.verify;
  else if (value.verify !== undefined) settings.verify = parseVerifySettings(value.verify, base.verify);
  if (value.expectEvery === null) delete settings.expectEvery;
  else if (value.expectEvery !== undefined) {
    settings.expectEvery = positiveInteger(value.expectEvery, "settings.expectEvery", MAX_EXPECT_EVERY_SECONDS);
  }
  if (value.keyFrame === null) delete settings.keyFrame;
  else if (value.keyFrame !== undefined) settings.keyFrame = parseKeyFrameSetting(value.keyFrame);
  checkCompaction(settings);
  return settings;
}

export function parseInboxName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.length > 200 || /[\u0000-\u001f]/.test(value)) {
    fail("name must be a string of at most 200 printable characters");
  }
  return value;
}
