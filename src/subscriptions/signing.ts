/*
 * Webhook signatures. Receivers verify with our public key (published as a JWK Set),
 * so no shared secret ever leaves the server. The key is Ed25519, made once and kept
 * as a record so that signatures stay verifiable across restarts; its kid is derived
 * from the key itself (RFC 7638 thumbprint), so it is stable and unique by construction.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";

export interface PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  use: "sig";
  alg: "EdDSA";
}

export interface SigningKey {
  kid: string;
  createdAt: string;
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

export function createSigningKey(now: Date = new Date()): SigningKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  return fromPrivateKey(privateKey, now.toISOString());
}

export function signingKeyToRecord(key: SigningKey): string {
  return JSON.stringify({
    v: 1,
    created_at: key.createdAt,
    private_key_pem: key.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  });
}

export function signingKeyFromRecord(value: string): SigningKey {
  const record = JSON.parse(value) as { created_at?: unknown; private_key_pem?: unknown };
  if (typeof record.private_key_pem !== "string" || typeof record.created_at !== "string") {
    throw new Error("signing key record is malformed");
  }
  return fromPrivateKey(createPrivateKey(record.private_key_pem), record.created_at);
}

function fromPrivateKey(privateKey: KeyObject, createdAt: string): SigningKey {
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new Error("not an Ed25519 key");
  const kid = `ds_${jwkThumbprint(jwk.x)}`;
  return { kid, createdAt, privateKey, publicJwk: { kty: "OKP", crv: "Ed25519", x: jwk.x, kid, use: "sig", alg: "EdDSA" } };
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace. */
export function jwkThumbprint(x: string): string {
  const canonical = JSON.stringify({ crv: "Ed25519", kty: "OKP", x });
  return createHash("sha256").update(canonical, "utf8").digest("base64url");
}

/** The Webhook-Signature header: Ed25519 over "<t>.<raw body>", t in Unix seconds. */
export function signatureHeader(key: SigningKey, rawBody: string, unixSeconds: number): string {
  const signature = sign(null, Buffer.from(`${unixSeconds}.${rawBody}`, "utf8"), key.privateKey);
  return `t=${unixSeconds},kid=${key.kid},ed25519=${signature.toString("base64url")}`;
}

export function jwkSet(keys: readonly SigningKey[]): { keys: PublicJwk[] } {
  return { keys: keys.map((key) => key.publicJwk) };
}
