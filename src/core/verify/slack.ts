/*
 * Slack: X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">, keyed by the
 * signing secret; the timestamp is X-Slack-Request-Timestamp (seconds).
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

const SIGNATURE = "x-slack-signature";
const TIMESTAMP = "x-slack-request-timestamp";
const PREFIX = "v0=";

export function compileSlack(settings: VerifySettings): SchemeCheck {
  const keys = settings.secrets.map((secret) => Buffer.from(secret, "utf8"));
  return ({ rawHeaders, body, receivedAt }) => {
    const timestampText = requireHeader(rawHeaders, TIMESTAMP);
    const timestamp = parseTimestamp(timestampText, TIMESTAMP);
    const value = requireHeader(rawHeaders, SIGNATURE);
    if (!value.startsWith(PREFIX)) failWith(`${SIGNATURE} does not start with ${PREFIX}`);
    const signature = decodeSignature(value.slice(PREFIX.length), "hex");
    if (!signature) failWith(`${SIGNATURE} is not hex after ${PREFIX}`);
    const head = latin1(`v0:${timestampText}:`);
    const reason = requireMatch(
      matchingKey(
        keys.map((key) => hmac("sha256", key, [head, body])),
        [signature],
      ),
      keys.length,
    );
    checkTolerance(timestamp, receivedAt, settings.toleranceSeconds, reason);
    return reason;
  };
}
