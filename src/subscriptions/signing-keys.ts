/*
 * The webhook signing keys as kept in the record store: read (oldest first, the newest
 * signs, every one stays published for receivers of older signatures) and, for the
 * leader, made on first start.
 */
import type { Logger } from "pino";
import type { RecordStore } from "./ports.js";
import { SIGNING_KEY_KIND } from "./records.js";
import { createSigningKey, signingKeyFromRecord, signingKeyToRecord, type SigningKey } from "./signing.js";

/** The readable keys, oldest first; an unreadable record is reported and skipped. */
export async function readSigningKeys(records: RecordStore, onUnreadable: (kid: string, error: unknown) => void): Promise<SigningKey[]> {
  const keys: SigningKey[] = [];
  for (const record of await records.listRecords(SIGNING_KEY_KIND)) {
    try {
      keys.push(signingKeyFromRecord(record.value));
    } catch (error) {
      onUnreadable(record.key, error);
    }
  }
  return keys.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/** The leader's keys: the stored ones, or a new one recorded before it is used. */
export async function loadSigningKeys(records: RecordStore, logger: Logger): Promise<SigningKey[]> {
  const keys = await readSigningKeys(records, (kid, error) => logger.error({ err: error, kid }, "webhook signing key unreadable; skipped"));
  if (keys.length > 0) return keys;
  const key = createSigningKey();
  await records.putRecord(SIGNING_KEY_KIND, key.kid, signingKeyToRecord(key));
  return [key];
}
