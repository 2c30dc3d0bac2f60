/*
 * How subscriptions and tombstones are kept in the record store: one JSON record per
 * subscription id, versioned so that a later layout can read older records. A deleted
 * subscription leaves a tombstone holding its last generation, so a subscription made
 * again under the same id keeps counting upwards and old wakes stay fenced.
 */
import type { Subscription } from "./subscription-state.js";

export const SUBSCRIPTION_KIND = "ds-subscription";
export const SIGNING_KEY_KIND = "ds-signing-key";

export type StoredSubscription =
  { kind: "live"; subscription: Subscription } | { kind: "deleted"; id: string; generation: number; deletedAt: string };

export function encodeSubscription(subscription: Subscription): string {
  return JSON.stringify({ v: 1, ...subscription });
}

export function encodeTombstone(id: string, generation: number, deletedAt: string): string {
  return JSON.stringify({ v: 1, id, deleted: true, generation, deletedAt });
}

export function decodeSubscription(value: string): StoredSubscription {
  const record = JSON.parse(value) as Record<string, unknown>;
  if (record.v !== 1 || typeof record.id !== "string" || typeof record.generation !== "number") {
    throw new Error("unknown subscription record layout");
  }
  if (record.deleted === true) {
    return { kind: "deleted", id: record.id, generation: record.generation, deletedAt: String(record.deletedAt) };
  }
  const { v: _version, ...subscription } = record;
  if (typeof subscription.config !== "object" || typeof subscription.links !== "object" || !("wake" in subscription)) {
    throw new Error("subscription record is incomplete");
  }
  return { kind: "live", subscription: subscription as unknown as Subscription };
}
