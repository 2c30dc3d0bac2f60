/*
 * The configurable `hmac` scheme, for senders that follow no preset: a signature header
 * (optional prefix, hex or base64) holding the HMAC (sha1, sha256 or sha512) of the body
 * or of a template such as "{timestamp}.{body}", keyed by the secret as UTF-8 text.
 */
import {
  checkTolerance,
  decodeSignature,
  failWith,
  hmac,
  matchingKey,
  parseTimestamp,
  requireHeader,
  requireMatch,
  latin1,
  type SchemeCheck,
} from "./primitives.js";
import { templateParts, type VerifySettings } from "./settings.js";

export function compileHmac(settings: VerifySettings): SchemeCheck {
  const options = settings.hmac!;
  const keys = settings.secrets.map((secret) => Buffer.from(secret, "utf8"));
  const parts = templateParts(options.signedContent);
  return ({ rawHeaders, body, receivedAt }) => {
    let timestampText: string | undefined;
    if (options.timestampHeader) timestampText = requireHeader(rawHeaders, options.timestampHeader);
    const value = requireHeader(rawHeaders, options.header);
    if (!value.startsWith(options.prefix)) failWith(`${options.header} does not start with ${options.prefix}`);
    const signature = decodeSignature(value.slice(options.prefix.length), options.encoding);
    if (!signature) failWith(`${options.header} is not ${options.encoding}${options.prefix ? ` after ${options.prefix}` : ""}`);
    const signed = parts.map((part) =>
      part === "{body}" ? body : part === "{timestamp}" ? latin1(timestampText!) : Buffer.from(part.text, "utf8"),
    );
    const reason = requireMatch(
      matchingKey(
        keys.map((key) => hmac(options.algorithm, key, signed)),
        [signature],
      ),
      keys.length,
    );
    if (options.timestampHeader) {
      checkTolerance(parseTimestamp(timestampText!, options.timestampHeader), receivedAt, settings.toleranceSeconds, reason);
    }
    return reason;
  };
}
