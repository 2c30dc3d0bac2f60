/*
 * What the subscription API answers: the JSON shapes of a subscription, a claim and an
 * ack, built from the in-memory model. No I/O and no state of their own.
 */
import type { SigningKey } from "./signing.js";
import { linkViews, subscriptionStatus, type StreamView, type Subscription, type WakeStreamView } from "./subscription-state.js";

export interface SubscriptionView {
  id: string;
  subscription_id: string;
  type: "webhook" | "pull-wake";
  pattern: string | null;
  streams: StreamView[];
  webhook: { url: string; signing: { alg: "ed25519"; kid: string; jwks_url: string } } | null;
  wake_stream: string | null;
  lease_ttl_ms: number;
  created_at: string;
  status: "active" | "failed";
  description: string | null;
}

export interface ClaimView {
  wake_id: string;
  generation: number;
  token: string;
  streams: WakeStreamView[];
  lease_ttl_ms: number;
}

export interface AckView {
  ok: true;
  next_wake: boolean;
}

/** `signingKey` is the newest key (the one that signs), `jwksUrl` where all keys are published. */
export function viewSubscription(subscription: Subscription, signingKey: SigningKey | undefined, jwksUrl: string): SubscriptionView {
  const { config } = subscription;
  return {
    id: subscription.id,
    subscription_id: subscription.id,
    type: config.type,
    pattern: config.pattern,
    streams: linkViews(subscription),
    webhook:
      config.webhookUrl === null || signingKey === undefined
        ? null
        : { url: config.webhookUrl, signing: { alg: "ed25519", kid: signingKey.kid, jwks_url: jwksUrl } },
    wake_stream: config.wakeStream,
    lease_ttl_ms: config.leaseTtlMs,
    created_at: subscription.createdAt,
    status: subscriptionStatus(subscription),
    description: config.description,
  };
}
