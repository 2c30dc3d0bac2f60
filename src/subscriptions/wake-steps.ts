/*
 * The steps behind the wake requests (claim, ack or callback, release): each checks
 * the request against the subscription and returns the next state with the answer,
 * for the subscription's queue to persist. No I/O; refusals are values.
 */
import { refuse, type Outcome } from "./errors.js";
import type { WakeRequest } from "./requests.js";
import {
  applyAcks,
  checkWakeRequest,
  claimWake,
  extendLease,
  finishWake,
  wakeStreamViews,
  type Subscription,
} from "./subscription-state.js";
import { ok, unchanged, type Step, type StepContext } from "./subscription-queue.js";
import type { AckView, ClaimView } from "./subscription-views.js";
import { hashBuffer, hashHex, newWakeId } from "./wake-secrets.js";

type WakeStep<T> = (subscription: Subscription, context: StepContext) => Step<T>;

/** A pull worker claims the pending work; `token` is shown to it once, in the answer. */
export function claimStep(worker: string, token: string): WakeStep<ClaimView> {
  return (subscription, { tails, now }) => {
    if (subscription.config.type !== "pull-wake") {
      return unchanged(subscription, refuse("INVALID_REQUEST", "only pull-wake subscriptions are claimed"));
    }
    const claim = claimWake(subscription, worker, tails, now, { wakeId: newWakeId(), tokenHash: hashHex(token) });
    if (claim.status === "already_claimed") {
      return unchanged(
        subscription,
        refuse("ALREADY_CLAIMED", "another worker holds the lease", { current_holder: claim.holder, generation: claim.generation }),
      );
    }
    if (claim.status === "no_pending_work") {
      return unchanged(subscription, refuse("NO_PENDING_WORK", "no linked stream has unacked messages"));
    }
    const next = claim.subscription;
    const view: ClaimView = {
      wake_id: next.wake!.wakeId,
      generation: next.generation,
      token,
      streams: wakeStreamViews(next),
      lease_ttl_ms: next.config.leaseTtlMs,
    };
    return { next, result: { ok: true, value: view } };
  };
}

export function releaseStep(token: string | undefined, request: WakeRequest): WakeStep<void> {
  return (subscription, context) => {
    const refusal = checkWake(subscription, "pull-wake", token, request);
    if (refusal) return unchanged(subscription, refusal);
    // Pending work left behind is woken again right away, for the next worker.
    return { next: context.wakeIfNeeded(finishWake(subscription)), result: ok() };
  };
}

/** A webhook receiver (callback) or pull worker (ack) acks, heartbeats, or finishes with done: true. */
export function answerStep(type: "webhook" | "pull-wake", token: string | undefined, request: WakeRequest): WakeStep<AckView> {
  return (subscription, context) => {
    const refusal = checkWake(subscription, type, token, request);
    if (refusal) return unchanged(subscription, refusal);
    const acked = applyAcks(subscription, request.acks, context.tails);
    if (!acked.ok) return unchanged(subscription, refuse("INVALID_OFFSET", acked.message));
    if (!request.done) {
      return { next: extendLease(acked.subscription, context.now), result: { ok: true, value: { ok: true, next_wake: false } } };
    }
    const next = context.wakeIfNeeded(finishWake(acked.subscription));
    return { next, result: { ok: true, value: { ok: true, next_wake: next.wake !== null } } };
  };
}

function checkWake(
  subscription: Subscription,
  type: "webhook" | "pull-wake",
  token: string | undefined,
  request: WakeRequest,
): Outcome<never> | undefined {
  if (subscription.config.type !== type) {
    return refuse(
      "INVALID_REQUEST",
      type === "webhook" ? "callbacks are for webhook subscriptions" : "acks and releases are for pull-wake subscriptions",
    );
  }
  if (token === undefined) return refuse("TOKEN_INVALID", "a Bearer token for this wake is required");
  const check = checkWakeRequest(subscription, request, hashBuffer(token));
  if (check === "fenced") return refuse("FENCED", "this wake is over", { generation: subscription.generation });
  if (check === "token_invalid") return refuse("TOKEN_INVALID", "the token is not valid for this wake");
  return undefined;
}
