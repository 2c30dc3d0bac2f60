/*
 * `settings.verify`: which signature scheme an inbox checks, with which secrets, how
 * strictly. Validated here from untrusted JSON; secrets are kept server-side and only
 * ever shown as a count (maskVerifySettings).
 */
import { createPublicKey } from "node:crypto";
import { TailhookError } from "../errors.js";
import { isSendableHeaderName } from "../header-text.js";
import type { InboxSettings } from "../types.js";

export const VERIFY_SCHEMES = ["standard-webhooks", "stripe", "github", "slack", "shopify", "hmac"] as const;
export type VerifyScheme = (typeof VERIFY_SCHEMES)[number];
export type VerifyMode = "annotate" | "enforce";
export const HMAC_ALGORITHMS = ["sha1", "sha256", "sha512"] as const;
export type HmacAlgorithm = (typeof HMAC_ALGORITHMS)[number];
export type SignatureEncoding = "hex" | "base64";

/** The `hmac` scheme: a signature header over the body, or over a template of timestamp and body. */
export interface HmacSchemeOptions {
  /** Lower-case header name carrying the signature. */
  header: string;
  algorithm: HmacAlgorithm;
  encoding: SignatureEncoding;
  /** Text before the signature in the header, e.g. "sha256=" ("" when none). */
  prefix: string;
  /** What is signed: "{body}", or a template such as "{timestamp}.{body}". */
  signedContent: string;
  /** Lower-case header carrying the Unix timestamp (seconds), when the template uses {timestamp}. */
  timestampHeader?: string;
}

export interface VerifySettings {
  scheme: VerifyScheme;
  /** Every one is tried (rotation); never returned by the API. */
  secrets: string[];
  mode: VerifyMode;
  /** Schemes with a signed timestamp refuse one further than this from the time of receipt. */
  toleranceSeconds: number;
  hmac?: HmacSchemeOptions;
}

/** What the API shows: the secrets as a count. */
export type VerifySettingsView = Omit<VerifySettings, "secrets"> & { secrets: number };
/** An inbox's settings as the API shows them. */
export type InboxSettingsView = Omit<InboxSettings, "verify"> & { verify?: VerifySettingsView };

export const DEFAULT_TOLERANCE_SECONDS = 300;
const MAX_TOLERANCE_SECONDS = 366 * 24 * 3600;
const MAX_SECRETS = 10;
const MAX_SECRET_LENGTH = 1024;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
/** Standard Webhooks key prefixes: symmetric secret, Ed25519 public key, Ed25519 signing key. */
export const WHSEC = "whsec_";
export const WHPK = "whpk_";
const WHSK = "whsk_";

function fail(message: string): never {
  throw new TailhookError("bad_request", message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, allowed: string[], where: string): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) fail(`unknown field ${where}.${key}`);
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], where: string, fallback?: T): T {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) fail(`${where} must be one of ${allowed.join(", ")}`);
  return value as T;
}

function headerName(value: unknown, where: string): string {
  if (typeof value !== "string" || !isSendableHeaderName(value)) fail(`${where} must be a header name`);
  return value.toLowerCase();
}

function checkStandardWebhooksSecret(secret: string, where: string): void {
  if (secret.startsWith(WHSK)) fail(`${where} is a signing key (whsk_…): give the sender's public key (whpk_…) instead`);
  const prefix = secret.startsWith(WHSEC) ? WHSEC : secret.startsWith(WHPK) ? WHPK : undefined;
  if (!prefix) fail(`${where} must be a whsec_… secret or a whpk_… Ed25519 public key`);
  const encoded = secret.slice(prefix.length);
  if (!BASE64.test(encoded)) fail(`${where} must be base64 after ${prefix}`);
  const bytes = Buffer.from(encoded, "base64").length;
  if (bytes === 0) fail(`${where} is empty`);
  if (prefix === WHPK) {
    if (bytes !== 32) fail(`${where} must hold a 32-byte Ed25519 public key, not ${bytes} bytes`);
    try {
      ed25519PublicKey(encoded);
    } catch {
      fail(`${where} is not a usable Ed25519 public key`);
    }
  }
}

/** An Ed25519 public key from the base64 of its 32 raw bytes. */
export function ed25519PublicKey(base64: string) {
  const x = Buffer.from(base64, "base64").toString("base64url");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
}

function parseSecrets(value: unknown, scheme: VerifyScheme): string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_SECRETS) {
    fail(`settings.verify.secrets must be an array of 1 to ${MAX_SECRETS} strings`);
  }
  return value.map((secret, index) => {
    const where = `settings.verify.secrets[${index}]`;
    if (typeof secret !== "string" || secret.length < 1 || secret.length > MAX_SECRET_LENGTH) {
      fail(`${where} must be a string of 1 to ${MAX_SECRET_LENGTH} characters`);
    }
    if (scheme === "standard-webhooks") checkStandardWebhooksSecret(secret, where);
    return secret;
  });
}

/** The template's literal text and placeholders, in order; throws on a template we cannot use. */
export function templateParts(template: string): Array<"{timestamp}" | "{body}" | { text: string }> {
  const parts: Array<"{timestamp}" | "{body}" | { text: string }> = [];
  for (const piece of template.split(/(\{timestamp\}|\{body\})/)) {
    if (piece === "{timestamp}" || piece === "{body}") parts.push(piece);
    else if (piece !== "") parts.push({ text: piece });
  }
  return parts;
}

function parseHmacOptions(value: unknown): HmacSchemeOptions {
  if (!isObject(value)) fail("settings.verify.hmac must be an object (the scheme hmac needs at least hmac.header)");
  onlyKeys(value, ["header", "algorithm", "encoding", "prefix", "signedContent", "timestampHeader"], "settings.verify.hmac");
  const options: HmacSchemeOptions = {
    header: headerName(value.header, "settings.verify.hmac.header"),
    algorithm: oneOf(value.algorithm, HMAC_ALGORITHMS, "settings.verify.hmac.algorithm", "sha256"),
    encoding: oneOf(value.encoding, ["hex", "base64"] as const, "settings.verify.hmac.encoding", "hex"),
    prefix: "",
    signedContent: "{body}",
  };
  if (value.prefix !== undefined) {
    if (typeof value.prefix !== "string" || value.prefix.length > 100)
      fail("settings.verify.hmac.prefix must be a string of at most 100 characters");
    options.prefix = value.prefix;
  }
  if (value.signedContent !== undefined) {
    if (typeof value.signedContent !== "string" || value.signedContent.length > 1000) {
      fail("settings.verify.hmac.signedContent must be a string of at most 1000 characters");
    }
    options.signedContent = value.signedContent;
  }
  const parts = templateParts(options.signedContent);
  if (parts.filter((part) => part === "{body}").length !== 1) fail("settings.verify.hmac.signedContent must contain {body} exactly once");
  const usesTimestamp = parts.includes("{timestamp}");
  if (value.timestampHeader !== undefined)
    options.timestampHeader = headerName(value.timestampHeader, "settings.verify.hmac.timestampHeader");
  if (usesTimestamp && !options.timestampHeader)
    fail("settings.verify.hmac.signedContent uses {timestamp}: set settings.verify.hmac.timestampHeader");
  if (!usesTimestamp && options.timestampHeader)
    fail("settings.verify.hmac.timestampHeader is set but signedContent has no {timestamp}: an unsigned timestamp proves nothing");
  return options;
}

/**
 * Parses `settings.verify`. On a change (PATCH), leaving out `secrets` keeps the
 * inbox's current ones, so an admin who only sees their count can still change the mode.
 */
export function parseVerifySettings(value: unknown, base?: VerifySettings): VerifySettings {
  if (!isObject(value)) fail("settings.verify must be an object");
  onlyKeys(value, ["scheme", "secrets", "mode", "toleranceSeconds", "hmac"], "settings.verify");
  const scheme = oneOf(value.scheme, VERIFY_SCHEMES, "settings.verify.scheme");
  if (value.secrets === undefined && !base) fail("settings.verify.secrets is required");
  const secrets = parseSecrets(value.secrets ?? base!.secrets, scheme);
  const mode = oneOf(value.mode, ["annotate", "enforce"] as const, "settings.verify.mode", "annotate");
  const tolerance = value.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (typeof tolerance !== "number" || !Number.isInteger(tolerance) || tolerance < 1 || tolerance > MAX_TOLERANCE_SECONDS) {
    fail(`settings.verify.toleranceSeconds must be an integer from 1 to ${MAX_TOLERANCE_SECONDS}`);
  }
  const settings: VerifySettings = { scheme, secrets, mode, toleranceSeconds: tolerance };
  if (scheme === "hmac") settings.hmac = parseHmacOptions(value.hmac);
  else if (value.hmac !== undefined) fail("settings.verify.hmac applies only to the scheme hmac");
  return settings;
}

export function maskVerifySettings({ secrets, ...rest }: VerifySettings): VerifySettingsView {
  return { ...rest, secrets: secrets.length };
}
