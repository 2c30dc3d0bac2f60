/*
 * Secrets and identifiers. Inbox ids are capabilities (whoever knows one can post to
 * it), so they carry 144 random bits; tokens carry 256 and are kept only as hashes.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";

/** Never starting with "-" or "_", so that a command line never mistakes one for an option. */
export function newInboxId(): string {
  for (;;) {
    const id = randomBytes(18).toString("base64url");
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

/** thk_: an inbox's read token; tha_: the admin token; ths_: a stream token (stream-grants.ts). */
export function newToken(prefix: "thk" | "tha" | "ths" = "thk"): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

/** Unique, not secret: randomUUID draws from a cached entropy pool, off the hot path's syscalls. */
export function newEventId(): string {
  return `evt_${randomUUID().replaceAll("-", "")}`;
}

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** Constant-time comparison of a presented token against a stored hash. */
export function tokenMatches(presented: string, storedHash: Buffer): boolean {
  const presentedHash = hashToken(presented);
  return presentedHash.length === storedHash.length && timingSafeEqual(presentedHash, storedHash);
}

const INBOX_ID_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;

export function looksLikeInboxId(value: string): boolean {
  return INBOX_ID_PATTERN.test(value);
}
