/*
 * Authenticating as a GitHub App: an RS256 JWT signed with the app's private key
 * (node:crypto), iss the app's id or client id, iat a minute in the past against
 * clock drift, exp within GitHub's 10-minute limit. Signed anew for every request,
 * so an app source never holds a token that expires.
 */
import { createPrivateKey, sign, type KeyObject } from "node:crypto";

/** GitHub rejects an exp more than 10 minutes ahead; iat is backdated 60 s, so exp - iat stays at 600 s. */
const BACKDATE_SECONDS = 60;
const LIFETIME_SECONDS = 9 * 60;
const MAX_PEM_LENGTH = 16_384;

/** The PEM as an RSA private key, or undefined (the caller words the error; the key is never echoed). */
export function parseAppPrivateKey(pem: unknown): KeyObject | undefined {
  if (typeof pem !== "string" || pem.length > MAX_PEM_LENGTH || !pem.includes("-----BEGIN")) return undefined;
  try {
    const key = createPrivateKey({ key: pem, format: "pem" });
    return key.asymmetricKeyType === "rsa" ? key : undefined;
  } catch {
    return undefined;
  }
}

export function appJwt(appId: string, privateKeyPem: string, nowMs = Date.now()): string {
  const now = Math.floor(nowMs / 1000);
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "RS256", typ: "JWT" })}.${encode({ iat: now - BACKDATE_SECONDS, exp: now + LIFETIME_SECONDS, iss: appId })}`;
  const signature = sign("sha256", Buffer.from(unsigned), createPrivateKey(privateKeyPem));
  return `${unsigned}.${signature.toString("base64url")}`;
}
