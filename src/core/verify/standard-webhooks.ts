/*
 * Standard Webhooks (standardwebhooks.com): headers webhook-id, webhook-timestamp
 * (seconds) and webhook-signature, a space-separated list of "<version>,<base64>".
 * The signed content is "<id>.<timestamp>.<body>". Version v1 is HMAC-SHA256 keyed by
 * the base64 bytes after "whsec_"; v1a is Ed25519, checked with a "whpk_" public key
 * (base64 of its 32 bytes). An inbox may hold both kinds of key at once.
 */
import { verify as verifySignature, type KeyObject } from "node:crypto";
import {
  checkTolerance,
  decodeSignature,
  failWith,
  hmac,
  latin1,
  parseTimestamp,
  requireHeader,
  requireMatch,
  sameBytes,
  type SchemeCheck,
} from "./primitives.js";
import { ed25519PublicKey, WHPK, WHSEC, type VerifySettings } from "./settings.js";

const ID = "webhook-id";
const TIMESTAMP = "webhook-timestamp";
const SIGNATURE = "webhook-signature";

type Key = { kind: "v1"; secret: Buffer } | { kind: "v1a"; publicKey: KeyObject };

function compileKey(secret: string): Key {
  if (secret.startsWith(WHSEC)) return { kind: "v1", secret: Buffer.from(secret.slice(WHSEC.length), "base64") };
  return { kind: "v1a", publicKey: ed25519PublicKey(secret.slice(WHPK.length)) };
}

export function compileStandardWebhooks(settings: VerifySettings): SchemeCheck {
  const keys = settings.secrets.map(compileKey);
  return ({ rawHeaders, body, receivedAt }) => {
    const id = requireHeader(rawHeaders, ID);
    const timestampText = requireHeader(rawHeaders, TIMESTAMP);
    const timestamp = parseTimestamp(timestampText, TIMESTAMP);
    const presented = { v1: [] as Buffer[], v1a: [] as Buffer[] };
    for (const entry of requireHeader(rawHeaders, SIGNATURE).split(" ")) {
      const comma = entry.indexOf(",");
      const version = entry.slice(0, comma);
      if (comma === -1 || (version !== "v1" && version !== "v1a")) continue;
      const signature = decodeSignature(entry.slice(comma + 1), "base64");
      if (signature) presented[version].push(signature);
    }
    if (presented.v1.length + presented.v1a.length === 0) failWith(`${SIGNATURE} has no v1 or v1a signature`);
    const head = latin1(`${id}.${timestampText}.`);
    let signedContent: Buffer | undefined; // Ed25519 signs one buffer: join only if a v1a key needs it
    let match = -1;
    keys.forEach((key, index) => {
      let matches = false;
      if (key.kind === "v1") {
        const digest = hmac("sha256", key.secret, [head, body]);
        for (const signature of presented.v1) matches = sameBytes(digest, signature) || matches;
      } else {
        signedContent ??= Buffer.concat([head, body]);
        for (const signature of presented.v1a) {
          matches = (signature.length === 64 && verifySignature(null, signedContent, key.publicKey, signature)) || matches;
        }
      }
      if (matches && match === -1) match = index;
    });
    const reason = requireMatch(match, keys.length);
    checkTolerance(timestamp, receivedAt, settings.toleranceSeconds, reason);
    return reason;
  };
}
