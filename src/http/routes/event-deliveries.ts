/*
 * `deliveries` on the single-event API of an inbox that dedupes: how many times the
 * sender delivered this event (1 = once). Only this route pays for it — one key
 * lookup — so stream reads stay a plain scan of stored messages. The key is
 * recomputed from the stored request, so nothing per event had to be written for it.
 */
import { buildEnvelope } from "../../core/capture.js";
import { dedupeKeyOf } from "../../core/dedupe.js";
import type { EventEnvelope, StoredInbox, StoredMessage } from "../../core/types.js";
import type { Store } from "../../storage/store.js";

export async function withDeliveries(
  store: Store,
  inbox: StoredInbox,
  message: StoredMessage,
): Promise<EventEnvelope & { deliveries?: number }> {
  const envelope = buildEnvelope(message);
  const settings = inbox.settings.dedupe;
  if (!settings) return envelope;
  const key = dedupeKeyOf(settings, {
    ...envelope,
    receivedAt: message.createdAt,
    rawHeaders: envelope.headers.flat(),
    body: message.data,
  });
  // Absent when the event carried no key, or its entry is past the window (pruned) or names another event.
  const record = key === undefined ? undefined : await store.findDelivery(inbox.streamId, key);
  return record && record.seq === message.seq ? { ...envelope, deliveries: record.deliveries } : envelope;
}
