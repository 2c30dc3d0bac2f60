/*
 * Signature verification: compiles an inbox's `settings.verify` once (keys decoded) and
 * checks a captured request's raw bytes against it, giving the verdict stored with the
 * event. Pure: no I/O, the clock is the request's receipt time.
 */
import type { VerificationVerdict } from "../types.js";
import { compileGithub } from "./github.js";
import { compileHmac } from "./hmac.js";
import { VerifyFailure, type SchemeCheck, type VerifyInput } from "./primitives.js";
import type { VerifyScheme, VerifySettings } from "./settings.js";
import { compileShopify } from "./shopify.js";
import { compileSlack } from "./slack.js";
import { compileStandardWebhooks } from "./standard-webhooks.js";
import { compileStripe } from "./stripe.js";

export { maskVerifySettings, parseVerifySettings, type VerifySettings, type VerifySettingsView } from "./settings.js";
export type { VerifyInput } from "./primitives.js";

const COMPILERS: Record<VerifyScheme, (settings: VerifySettings) => SchemeCheck> = {
  "standard-webhooks": compileStandardWebhooks,
  stripe: compileStripe,
  github: compileGithub,
  slack: compileSlack,
  shopify: compileShopify,
  hmac: compileHmac,
};

// Keyed by the settings object, which the store's inbox cache hands out again and again.
const compiled = new WeakMap<VerifySettings, SchemeCheck>();

/** Whether an append refuses the request: only a failed check in enforce mode does (annotate stores it with the verdict). */
export function refusesRequest(settings: VerifySettings, verdict: VerificationVerdict): boolean {
  return !verdict.ok && settings.mode === "enforce";
}

export function verifyRequest(settings: VerifySettings, input: VerifyInput): VerificationVerdict {
  try {
    let check = compiled.get(settings);
    if (!check) {
      check = COMPILERS[settings.scheme](settings);
      compiled.set(settings, check);
    }
    return { scheme: settings.scheme, ok: true, reason: check(input) };
  } catch (error) {
    if (error instanceof VerifyFailure) return { scheme: settings.scheme, ok: false, reason: error.message };
    // Settings an older version stored, a key OpenSSL refuses: a failed check, not a 5xx.
    return { scheme: settings.scheme, ok: false, reason: `verification error: ${(error as Error).message}` };
  }
}
