/* GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>, keyed by the webhook secret. No timestamp. */
import { decodeSignature, failWith, hmac, matchingKey, requireHeader, requireMatch, type SchemeCheck } from "./primitives.js";
import type { VerifySettings } from "./settings.js";

const HEADER = "x-hub-signature-256";
const PREFIX = "sha256=";

export function compileGithub(settings: VerifySettings): SchemeCheck {
  const keys = settings.secrets.map((secret) => Buffer.from(secret, "utf8"));
  return ({ rawHeaders, body }) => {
    const value = requireHeader(rawHeaders, HEADER);
    if (!value.startsWith(PREFIX)) failWith(`${HEADER} does not start with ${PREFIX}`);
    const signature = decodeSignature(value.slice(PREFIX.length), "hex");
    if (!signature) failWith(`${HEADER} is not hex after ${PREFIX}`);
    return requireMatch(
      matchingKey(
        keys.map((key) => hmac("sha256", key, [body])),
        [signature],
      ),
      keys.length,
    );
  };
}
