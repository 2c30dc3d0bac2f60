/*
 * The subscription model and its transitions, with no I/O: the service reads tails and
 * the clock, calls one of these, persists the result and only then answers. Every
 * transition returns a new value (or the same one when nothing changed), so a failed
 * write leaves the in-memory state as it was.
 *
 * Glossary:
 *   link        one stream a subscription follows, with its acked (last processed) offset
 *   pending     a linked stream whose tail is past its acked offset
 *   wake        one round of "there is work": a wake_id, the subscription's generation,
 *               the tails it was issued for (snapshot), the tokens that may answer it,
 *               and for webhooks or wake events the delivery still owed
 *   lease       how long the current holder (webhook receiver or pull worker) may take
 *   generation  fencing counter, +1 for every wake; stale callbacks and acks are refused
 */
import { timingSafeEqual } from "node:crypto";
import { formatOffset } from "../core/offsets.js";
import { matchGlob } from "./glob.js";
import type { StreamAck, SubscriptionConfig, WakeRequest } from "./requests.js";
import { isApplicationStream } from "./stream-paths.js";

/** The offset before a stream's first message: acked there, every message is still to come. */
export const BEFORE_FIRST_OFFSET = formatOffset(0);

export interface StreamLink {
  /** Added through streams[]; otherwise the link exists because the pattern matched. */
  explicit: boolean;
  ackedOffset: string;
}

export interface Delivery {
  /** Failed attempts so far; the subscription reports status "failed" while above 0. */
  attempts: number;
  nextAttemptAt: number;
}

export interface Wake {
  wakeId: string;
  /** Tail of each pending stream when the wake was issued or claimed; { done: true } acks these. */
  snapshot: Record<string, string>;
  /** SHA-256 (hex) of the tokens that may answer this wake; never the tokens themselves. */
  tokenHashes: string[];
  holder: string | null;
  leaseExpiresAt: number | null;
  /** The webhook POST or wake event still owed for this wake, null once it arrived. */
  delivery: Delivery | null;
}

export interface Subscription {
  id: string;
  config: SubscriptionConfig;
  configHash: string;
  createdAt: string;
  links: Record<string, StreamLink>;
  generation: number;
  wake: Wake | null;
}

/** Tails of streams read just before a transition; a missing path is a missing stream. */
export type Tails = ReadonlyMap<string, string>;

export interface StreamChange {
  path: string;
  tailOffset: string;
  created: boolean;
}

export interface StreamView {
  path: string;
  link_type: "explicit" | "glob";
  acked_offset: string;
}

export interface WakeStreamView extends StreamView {
  tail_offset: string;
  has_pending: boolean;
}

/** New identifiers for a wake, drawn by the caller (randomness stays out of here). */
export interface FreshWake {
  wakeId: string;
  /** The webhook callback token's hash; null for pull-wake, whose token comes with the claim. */
  tokenHash: string | null;
}

const MAX_TOKEN_HASHES = 8;

export function newSubscription(input: {
  id: string;
  config: SubscriptionConfig;
  configHash: string;
  createdAt: string;
  /** Continues the generation of a deleted subscription with the same id, so old tokens stay fenced. */
  generation: number;
  /** Every live stream (for the pattern) and the tails of the explicit ones. */
  existing: ReadonlyArray<{ path: string; tailOffset: string }>;
  explicitTails: Tails;
}): Subscription {
  const links: Record<string, StreamLink> = {};
  // Existing streams join at their tail: creating a subscription replays no history.
  for (const path of input.config.streams) {
    links[path] = { explicit: true, ackedOffset: input.explicitTails.get(path) ?? BEFORE_FIRST_OFFSET };
  }
  for (const stream of input.existing) {
    if (links[stream.path] === undefined && patternLinks(input.config, stream.path)) {
      links[stream.path] = { explicit: false, ackedOffset: stream.tailOffset };
    }
  }
  return {
    id: input.id,
    config: input.config,
    configHash: input.configHash,
    createdAt: input.createdAt,
    links,
    generation: input.generation,
    wake: null,
  };
}

/** Whether the pattern (not an explicit link) brings this stream in. */
export function patternLinks(config: SubscriptionConfig, path: string): boolean {
  return config.pattern !== null && isApplicationStream(path) && path !== config.wakeStream && matchGlob(config.pattern, path);
}

/** Whether an append to this stream may matter to the subscription. */
export function concerns(subscription: Subscription, path: string): boolean {
  return subscription.links[path] !== undefined || patternLinks(subscription.config, path);
}

/**
 * Links streams that appeared through appends. A stream we had not linked yet, or one
 * created anew under a linked path, joins before its first message so nothing is missed.
 */
export function observeAppends(subscription: Subscription, changes: readonly StreamChange[]): Subscription {
  let links: Record<string, StreamLink> | undefined;
  for (const change of changes) {
    const link = (links ?? subscription.links)[change.path];
    if (link === undefined) {
      if (!patternLinks(subscription.config, change.path)) continue;
      links ??= { ...subscription.links };
      links[change.path] = { explicit: false, ackedOffset: BEFORE_FIRST_OFFSET };
    } else if (change.created && link.ackedOffset !== BEFORE_FIRST_OFFSET) {
      links ??= { ...subscription.links };
      links[change.path] = { ...link, ackedOffset: BEFORE_FIRST_OFFSET };
    }
  }
  return links === undefined ? subscription : { ...subscription, links };
}

/** Links every listed stream the pattern matches but we do not follow yet (after a restart). */
export function linkMissedStreams(subscription: Subscription, streams: ReadonlyArray<{ path: string }>): Subscription {
  return observeAppends(
    subscription,
    streams.map((stream) => ({ path: stream.path, tailOffset: "", created: false })),
  );
}

export function linkExplicit(subscription: Subscription, paths: readonly string[], tails: Tails): Subscription {
  const links = { ...subscription.links };
  for (const path of paths) {
    const link = links[path];
    links[path] = link ? { ...link, explicit: true } : { explicit: true, ackedOffset: tails.get(path) ?? BEFORE_FIRST_OFFSET };
  }
  return { ...subscription, links };
}

/** Drops only the explicit link: a stream the pattern matches stays linked (as glob). */
export function unlinkExplicit(subscription: Subscription, path: string): Subscription {
  const link = subscription.links[path];
  if (!link?.explicit) return subscription;
  const links = { ...subscription.links };
  if (patternLinks(subscription.config, path)) links[path] = { ...link, explicit: false };
  else delete links[path];
  return { ...subscription, links };
}

export function pendingStreams(subscription: Subscription, tails: Tails): Record<string, string> {
  const pending: Record<string, string> = {};
  for (const [path, link] of Object.entries(subscription.links)) {
    const tail = tails.get(path);
    if (tail !== undefined && tail > link.ackedOffset) pending[path] = tail;
  }
  return pending;
}

/** Idle with pending work: the protocol requires a new wake. */
export function needsWake(subscription: Subscription, tails: Tails): boolean {
  return subscription.wake === null && Object.keys(pendingStreams(subscription, tails)).length > 0;
}

export function issueWake(subscription: Subscription, tails: Tails, now: number, fresh: FreshWake): Subscription {
  return {
    ...subscription,
    generation: subscription.generation + 1,
    wake: {
      wakeId: fresh.wakeId,
      snapshot: pendingStreams(subscription, tails),
      tokenHashes: fresh.tokenHash === null ? [] : [fresh.tokenHash],
      holder: null,
      leaseExpiresAt: null,
      delivery: { attempts: 0, nextAttemptAt: now },
    },
  };
}

/** A lease past its time frees the subscription; the caller then wakes again if work is pending. */
export function expireLease(subscription: Subscription, now: number): Subscription {
  const expiresAt = subscription.wake?.leaseExpiresAt;
  if (expiresAt === null || expiresAt === undefined || expiresAt > now) return subscription;
  return { ...subscription, wake: null };
}

export type WakeCheck = "ok" | "fenced" | "token_invalid";

/**
 * Fencing comes first: a request for a wake that is over is refused as FENCED whatever
 * its token, which reveals nothing (generations are public in wake events) and lets an
 * honest late caller tell "too late" from "wrong token". A current wake needs its token.
 */
export function checkWakeRequest(subscription: Subscription, request: WakeRequest, tokenHash: Buffer): WakeCheck {
  const wake = subscription.wake;
  if (wake === null || request.generation !== subscription.generation || request.wakeId !== wake.wakeId) return "fenced";
  let matched = false;
  for (const stored of wake.tokenHashes) {
    const storedHash = Buffer.from(stored, "hex");
    if (storedHash.length === tokenHash.length && timingSafeEqual(storedHash, tokenHash)) matched = true;
  }
  return matched ? "ok" : "token_invalid";
}

export type AckResult = { ok: true; subscription: Subscription } | { ok: false; message: string };

/** All or nothing: acks are last-processed inclusive and never move a cursor backwards or past the tail. */
export function applyAcks(subscription: Subscription, acks: readonly StreamAck[], tails: Tails): AckResult {
  const links = { ...subscription.links };
  for (const ack of acks) {
    const link = links[ack.stream];
    if (link === undefined) return { ok: false, message: `${ack.stream} is not linked to this subscription` };
    const tail = tails.get(ack.stream);
    if (tail === undefined || ack.offset > tail) return { ok: false, message: `offset ${ack.offset} is past the tail of ${ack.stream}` };
    if (ack.offset < link.ackedOffset) {
      return { ok: false, message: `offset ${ack.offset} is before the acked offset of ${ack.stream}` };
    }
    links[ack.stream] = { ...link, ackedOffset: ack.offset };
  }
  return { ok: true, subscription: { ...subscription, links } };
}

/** A valid callback or heartbeat: the holder is alive, and a webhook evidently arrived. */
export function extendLease(subscription: Subscription, now: number): Subscription {
  const wake = subscription.wake;
  if (wake === null) return subscription;
  return { ...subscription, wake: { ...wake, leaseExpiresAt: now + subscription.config.leaseTtlMs, delivery: null } };
}

export function finishWake(subscription: Subscription): Subscription {
  return subscription.wake === null ? subscription : { ...subscription, wake: null };
}

/** The webhook answered { done: true }: ack what it was shown (never backwards), then finish. */
export function finishWithSnapshot(subscription: Subscription): Subscription {
  const wake = subscription.wake;
  if (wake === null) return subscription;
  const links = { ...subscription.links };
  for (const [path, tail] of Object.entries(wake.snapshot)) {
    const link = links[path];
    if (link && tail > link.ackedOffset) links[path] = { ...link, ackedOffset: tail };
  }
  return { ...subscription, links, wake: null };
}

/**
 * The webhook was accepted (2xx) or the wake event written. For a webhook the lease
 * starts here rather than at issue: while we are still retrying, nobody holds the work,
 * and a lease shorter than the backoff would otherwise re-wake over our own retries.
 */
export function deliverySucceeded(subscription: Subscription, wakeId: string, now: number): Subscription {
  const wake = subscription.wake;
  if (wake === null || wake.wakeId !== wakeId || wake.delivery === null) return subscription;
  const leaseExpiresAt = subscription.config.type === "webhook" ? now + subscription.config.leaseTtlMs : wake.leaseExpiresAt;
  return { ...subscription, wake: { ...wake, delivery: null, leaseExpiresAt } };
}

export function deliveryFailed(subscription: Subscription, wakeId: string, now: number, random: () => number): Subscription {
  const wake = subscription.wake;
  if (wake === null || wake.wakeId !== wakeId || wake.delivery === null) return subscription;
  const attempts = wake.delivery.attempts + 1;
  return {
    ...subscription,
    wake: { ...wake, delivery: { attempts, nextAttemptAt: now + retryDelayMs(attempts, random) } },
  };
}

/** 1 s, 2 s, 4 s ... up to 60 s, each ±20% so that many subscriptions do not retry in step. */
export function retryDelayMs(failedAttempts: number, random: () => number): number {
  const base = Math.min(60_000, 1_000 * 2 ** Math.min(Math.max(failedAttempts - 1, 0), 16));
  return Math.round(base * (1 + 0.2 * (2 * random() - 1)));
}

/** A webhook callback token minted after a restart (the plaintext of earlier ones is gone). */
export function addTokenHash(subscription: Subscription, wakeId: string, tokenHash: string): Subscription {
  const wake = subscription.wake;
  if (wake === null || wake.wakeId !== wakeId) return subscription;
  const tokenHashes = [...wake.tokenHashes, tokenHash].slice(-MAX_TOKEN_HASHES);
  return { ...subscription, wake: { ...wake, tokenHashes } };
}

export type ClaimResult =
  | { status: "claimed"; subscription: Subscription }
  | { status: "already_claimed"; holder: string; generation: number }
  | { status: "no_pending_work" };

/**
 * A pull worker takes the current wake, or a new one when work is pending and nothing is
 * out. The snapshot is refreshed so the worker sees the tails as they are now, and a
 * wake event still owed is dropped: the worker it was meant to summon is here.
 */
export function claimWake(
  subscription: Subscription,
  worker: string,
  tails: Tails,
  now: number,
  fresh: { wakeId: string; tokenHash: string },
): ClaimResult {
  let current = subscription;
  if (current.wake?.holder) return { status: "already_claimed", holder: current.wake.holder, generation: current.generation };
  if (current.wake === null) {
    if (!needsWake(current, tails)) return { status: "no_pending_work" };
    current = issueWake(current, tails, now, { wakeId: fresh.wakeId, tokenHash: null });
  }
  const wake = current.wake!;
  return {
    status: "claimed",
    subscription: {
      ...current,
      wake: {
        ...wake,
        snapshot: pendingStreams(current, tails),
        tokenHashes: [fresh.tokenHash],
        holder: worker,
        leaseExpiresAt: now + current.config.leaseTtlMs,
        delivery: null,
      },
    },
  };
}

export function subscriptionStatus(subscription: Subscription): "active" | "failed" {
  return (subscription.wake?.delivery?.attempts ?? 0) > 0 ? "failed" : "active";
}

export function linkViews(subscription: Subscription): StreamView[] {
  return Object.entries(subscription.links)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, link]) => ({ path, link_type: link.explicit ? "explicit" : "glob", acked_offset: link.ackedOffset }));
}

/** The streams a wake is about: those pending in its snapshot, with the cursors as they are now. */
export function wakeStreamViews(subscription: Subscription): WakeStreamView[] {
  const snapshot = subscription.wake?.snapshot ?? {};
  return linkViews(subscription)
    .filter((view) => snapshot[view.path] !== undefined)
    .map((view) => {
      const tail = snapshot[view.path]!;
      return { ...view, tail_offset: tail, has_pending: tail > view.acked_offset };
    });
}

/** When the service must act next on its own: a lease to expire or a delivery to attempt (unless one is on the wire). */
export function nextDeadline(subscription: Subscription, deliveryInFlight: boolean): number | undefined {
  const wake = subscription.wake;
  if (wake === null) return undefined;
  const times: number[] = [];
  if (wake.leaseExpiresAt !== null) times.push(wake.leaseExpiresAt);
  if (wake.delivery !== null && !deliveryInFlight) times.push(wake.delivery.nextAttemptAt);
  return times.length === 0 ? undefined : Math.min(...times);
}
