/* Shopify: X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>, keyed by the app's client secret. No timestamp. */
import { decodeSignature, failWith, hmac, matchingKey, requireHeader, requireMatch, type SchemeCheck } from "./primitives.js";
import type { VerifySettings } from "./settings.js";

const HEADER = "x-shopify-hmac-sha256";

export function compileShopify(settings: VerifySettings): SchemeCheck {
  const keys = settings.secrets.map((secret) => Buffer.from(secret, "utf8"));
  return ({ rawHeaders, body }) => {
    const signature = decodeSignature(requireHeader(rawHeaders, HEADER), "base64");
    if (!signature) failWith(`${HEADER} is not base64`);
    return requireMatch(
      matchingKey(
        keys.map((key) => hmac("sha256", key, [body])),
        [signature],
      ),
      keys.length,
    );
  };
}
