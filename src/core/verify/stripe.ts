/*
 * Stripe: Stripe-Signature: t=<seconds>,v1=<hex>[,v1=<hex>…] where each v1 is the
 * HMAC-SHA256 of "<t>.<body>" keyed by the endpoint's whsec_… secret as text (Stripe
 * does not base64-decode it). Other schemes in the header (v0) are ignored.
 */
import {
  checkTolerance,
  decodeSignature,
  failWith,
  hmac,
  latin1,
  matchingKey,
  parseTimestamp,
  requireHeader,
  requireMatch,
  type SchemeCheck,
} from "./primitives.js";
import type { VerifySettings } from "./settings.js";

const HEADER = "stripe-signature";

export function compileStripe(settings: VerifySettings): SchemeCheck {
  const keys = settings.secrets.map((secret) => Buffer.from(secret, "utf8"));
  return ({ rawHeaders, body, receivedAt }) => {
    let timestampText: string | undefined;
    const signatures: Buffer[] = [];
    for (const item of requireHeader(rawHeaders, HEADER).split(",")) {
      const equals = item.indexOf("=");
      const key = item.slice(0, equals).trim();
      const value = item.slice(equals + 1).trim();
      if (key === "t" && timestampText === undefined) timestampText = value;
      if (key === "v1") {
        const signature = decodeSignature(value, "hex");
        if (signature) signatures.push(signature);
      }
    }
    if (timestampText === undefined) failWith(`${HEADER} has no timestamp (t=)`);
    if (signatures.length === 0) failWith(`${HEADER} has no v1 signature`);
    const timestamp = parseTimestamp(timestampText, `${HEADER} t=`);
    const head = latin1(`${timestampText}.`);
    const reason = requireMatch(
      matchingKey(
        keys.map((key) => hmac("sha256", key, [head, body])),
        signatures,
      ),
      keys.length,
    );
    checkTolerance(timestamp, receivedAt, settings.toleranceSeconds, reason);
    return reason;
  };
}
