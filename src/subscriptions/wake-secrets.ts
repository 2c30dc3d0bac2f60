/*
 * The secrets a wake hands out and the hashes the records keep instead: tokens are
 * shown once (webhook body or claim reply) and only their SHA-256 is stored.
 */
import { createHash, randomBytes } from "node:crypto";

/** 256 random bits; the prefix says what a leaked string is (w: webhook callback, c: claim). */
export function newSecret(prefix: "dsw" | "dsc"): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

export function newWakeId(): string {
  return `w_${randomBytes(12).toString("base64url")}`;
}

export function hashBuffer(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export function hashHex(token: string): string {
  return hashBuffer(token).toString("hex");
}
