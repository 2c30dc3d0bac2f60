/*
 * Re-signing deliveries with a local Standard Webhooks secret (`--sign whsec_…`), as
 * the Stripe CLI does for local listeners: a replay of an old event carries the
 * sender's old timestamp, which every receiver rejects after its tolerance (about five
 * minutes), so the local app verifies tailhook's fresh signature instead.
 * Spec: https://www.standardwebhooks.com/ (webhook-id, webhook-timestamp,
 * webhook-signature = "v1," + base64 HMAC-SHA256 of "<id>.<timestamp>.<body>").
 */
import { createHmac } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
/** The spec asks for 24 to 64 random bytes; fewer than 16 is refused as a likely typo. */
const MIN_KEY_BYTES = 16;

/**
 * Headers the re-signed delivery must not carry from the sender: its own Standard
 * Webhooks signature (a receiver would see two of each, and node joins them into one
 * unparsable value), and the svix-* variants, which Svix's library reads before the
 * webhook-* ones and would check against the stale timestamp.
 */
export const REPLACED_HEADERS = new Set([
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "svix-id",
  "svix-timestamp",
  "svix-signature",
]);

export interface SigningKey {
  /** The raw HMAC key (the base64 after whsec_, decoded). */
  readonly key: Buffer;
}

/** Parses `whsec_<base64>`; throws an Error whose message says what is wrong (never the secret). */
export function parseSigningSecret(raw: string): SigningKey {
  if (!raw.startsWith(SECRET_PREFIX)) throw new Error(`the signing secret must start with ${SECRET_PREFIX}`);
  const encoded = raw.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new Error(`the signing secret must be ${SECRET_PREFIX} followed by standard base64`);
  }
  const key = Buffer.from(encoded, "base64");
  if (key.length < MIN_KEY_BYTES) {
    throw new Error(`the signing secret must hold at least ${MIN_KEY_BYTES} bytes (24 to 64 random bytes recommended), got ${key.length}`);
  }
  return { key };
}

/** `v1,<base64 HMAC-SHA256>` over `${id}.${timestamp}.` and the exact body bytes. */
export function standardSignature(signing: SigningKey, id: string, timestampSeconds: number, body: Buffer): string {
  const mac = createHmac("sha256", signing.key).update(`${id}.${timestampSeconds}.`).update(body).digest("base64");
  return `v1,${mac}`;
}

/** The three headers of one attempt: the id stays the same across attempts, the timestamp is now. */
export function signatureHeaders(signing: SigningKey, id: string, body: Buffer, now = Date.now()): string[] {
  const timestamp = Math.floor(now / 1000);
  return ["webhook-id", id, "webhook-timestamp", String(timestamp), "webhook-signature", standardSignature(signing, id, timestamp, body)];
}
