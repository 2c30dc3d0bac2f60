/*
 * The subscription service: keeps every subscription in memory, changes one only inside
 * its own queue (so requests, appends and timers never interleave on it), writes the new
 * state to the record store before anyone is told, and then acts on it: a timer for the
 * next lease expiry or retry, a webhook POST or a wake event for a new wake.
 *
 * The record store is the truth across restarts; start() reloads it, links streams that
 * appeared while we were not looking, expires overdue leases and resumes owed deliveries.
 * Deliveries are at least once: a wake whose POST may or may not have arrived before a
 * crash is sent again, fenced by the same generation and wake_id.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { postJson, repliedDone, type WebhookResolver } from "./delivery.js";
import { refuse, type Outcome } from "./errors.js";
import type { RecordStore, StreamDirectory, StreamTail } from "./ports.js";
import {
  decodeSubscription,
  encodeSubscription,
  encodeTombstone,
  SIGNING_KEY_KIND,
  SUBSCRIPTION_KIND,
} from "./records.js";
import {
  configHash,
  parseStreamList,
  parseSubscriptionConfig,
  parseWakeRequest,
  parseWorker,
  type WakeRequest,
} from "./requests.js";
import { createSigningKey, jwkSet, signatureHeader, signingKeyFromRecord, signingKeyToRecord, type SigningKey } from "./signing.js";
import {
  addTokenHash,
  applyAcks,
  checkWakeRequest,
  claimWake,
  concerns,
  deliveryFailed,
  deliverySucceeded,
  expireLease,
  extendLease,
  finishWake,
  finishWithSnapshot,
  issueWake,
  linkExplicit,
  linkMissedStreams,
  linkViews,
  needsWake,
  newSubscription,
  nextDeadline,
  observeAppends,
  subscriptionStatus,
  unlinkExplicit,
  wakeStreamViews,
  type StreamChange,
  type StreamView,
  type Subscription,
  type Tails,
  type WakeStreamView,
} from "./subscription-state.js";
import { isApplicationStream, normalizeStreamPath } from "./stream-paths.js";
import { checkWebhookUrl, type WebhookUrlPolicy } from "./webhook-url.js";

export interface SubscriptionServiceOptions {
  directory: StreamDirectory;
  records: RecordStore;
  /** Where callers reach us, e.g. http://127.0.0.1:1234, for callback and JWKS URLs. */
  baseUrl: () => string;
  logger: Logger;
  /** The protocol's development exception for webhooks to localhost and 127.0.0.x (default false). */
  allowLocalhostWebhooks?: boolean;
  /** Resolves webhook hosts (the system resolver by default; tests inject one). */
  resolveWebhookHost?: WebhookResolver;
  /** How long one webhook POST may take (default 10 s). */
  deliveryTimeoutMs?: number;
}

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

interface StepContext {
  tails: Map<string, string>;
  now: number;
  /** Issues a wake when the subscription is idle with pending work (the protocol's invariant). */
  wakeIfNeeded: (subscription: Subscription) => Subscription;
}

interface Step<T> {
  next: Subscription;
  result: Outcome<T>;
}

/** "always": the step looks at tails. "when-idle": only the idle check does (cheap while a wake is out). */
type TailNeed = "always" | "when-idle";

const RESERVED_ROOT = "/v1/stream/__ds";
const RETRY_AFTER_STORE_ERROR_MS = 1_000;
const DEFAULT_DELIVERY_TIMEOUT_MS = 10_000;

export class SubscriptionService {
  private readonly subscriptions = new Map<string, Subscription>();
  /** Last generation of deleted subscriptions, so a re-created id keeps counting upwards. */
  private readonly tombstones = new Map<string, number>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Appends waiting for one queued observe per subscription, so bursts collapse into one update. */
  private readonly queuedChanges = new Map<string, StreamChange[]>();
  /** Appends seen while a subscription is being created, replayed once it exists. */
  private readonly creating = new Map<string, StreamChange[]>();
  /** Deliveries on the wire, by wake_id. */
  private readonly inFlight = new Map<string, { subscriptionId: string; controller: AbortController }>();
  /** Webhook callback tokens by wake_id, in memory only: records keep just their hashes. */
  private readonly liveTokens = new Map<string, string>();
  private readonly urlPolicy: WebhookUrlPolicy;
  private readonly deliveryTimeoutMs: number;
  private keys: SigningKey[] = [];
  private started = false;
  private closed = false;
  /**
   * Requests wait for start(): the server listens before we have loaded our records (we
   * need its address for callback URLs), and a PUT answered from an empty map would
   * overwrite a stored subscription.
   */
  private readonly loaded: Promise<void>;
  private markLoaded!: (error?: unknown) => void;

  constructor(private readonly options: SubscriptionServiceOptions) {
    this.urlPolicy = { allowLocalhost: options.allowLocalhostWebhooks ?? false };
    this.deliveryTimeoutMs = options.deliveryTimeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
    this.loaded = new Promise<void>((resolve, reject) => {
      this.markLoaded = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.loaded.catch(() => undefined);
  }

  async start(): Promise<void> {
    if (this.started) return this.loaded;
    this.started = true;
    try {
      await this.load();
      this.markLoaded();
    } catch (error) {
      this.markLoaded(error);
      throw error;
    }
    await this.reconcile();
  }

  private async load(): Promise<void> {
    await this.loadSigningKeys();
    for (const record of await this.options.records.listRecords(SUBSCRIPTION_KIND)) {
      try {
        const stored = decodeSubscription(record.value);
        if (stored.kind === "live") this.subscriptions.set(record.key, stored.subscription);
        else this.tombstones.set(record.key, stored.generation);
      } catch (error) {
        this.options.logger.error({ err: error, subscription: record.key }, "subscription record unreadable; skipped");
      }
    }
    this.options.directory.onAppend((changes) => this.observe(changes));
  }

  /** Streams may have appeared, leases run out and deliveries fallen due while we were down. */
  private async reconcile(): Promise<void> {
    const streams = await this.options.directory.list();
    for (const id of [...this.subscriptions.keys()]) {
      await this.modify(id, "always", (subscription) => ({
        next: linkMissedStreams(subscription, streams),
        result: ok(),
      }));
      this.act(id);
    }
  }

  /** Stops timers and deliveries and waits for updates under way; later appends are ignored. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const { controller } of this.inFlight.values()) controller.abort();
    await Promise.allSettled([...this.queues.values()]);
  }

  async jwks(): Promise<{ keys: unknown[] }> {
    await this.loaded;
    return jwkSet(this.keys);
  }

  async put(id: string, body: unknown): Promise<Outcome<{ created: boolean; view: SubscriptionView }>> {
    const parsed = parseSubscriptionConfig(body, this.urlPolicy);
    if (!parsed.ok) return parsed;
    const config = parsed.value;
    const hash = configHash(config);
    await this.loaded;
    return this.exclusive(id, async () => {
      const existing = this.subscriptions.get(id);
      if (existing) {
        if (existing.configHash !== hash) {
          return refuse("SUBSCRIPTION_ALREADY_EXISTS", "a subscription with this id exists with a different configuration");
        }
        return { ok: true, value: { created: false, view: this.view(existing) } };
      }
      this.creating.set(id, []);
      try {
        const existingStreams: StreamTail[] = config.pattern === null ? [] : await this.options.directory.list();
        const subscription = newSubscription({
          id,
          config,
          configHash: hash,
          createdAt: new Date().toISOString(),
          generation: this.tombstones.get(id) ?? 0,
          existing: existingStreams,
          explicitTails: await this.readTails(config.streams),
        });
        await this.options.records.putRecord(SUBSCRIPTION_KIND, id, encodeSubscription(subscription));
        this.subscriptions.set(id, subscription);
        this.tombstones.delete(id);
        // Appends that landed between the listing and now would otherwise go unseen.
        const missed = this.creating.get(id) ?? [];
        if (missed.length > 0) this.queueObserve(id, missed);
        return { ok: true, value: { created: true, view: this.view(subscription) } };
      } finally {
        this.creating.delete(id);
      }
    });
  }

  async get(id: string): Promise<Outcome<SubscriptionView>> {
    await this.loaded;
    const subscription = this.subscriptions.get(id);
    return subscription ? { ok: true, value: this.view(subscription) } : notFound();
  }

  /** Tombstones the subscription; callbacks, acks and releases for it then fail without effect. */
  async delete(id: string): Promise<void> {
    await this.loaded;
    await this.exclusive(id, async () => {
      const subscription = this.subscriptions.get(id);
      if (!subscription) return;
      await this.options.records.putRecord(
        SUBSCRIPTION_KIND,
        id,
        encodeTombstone(id, subscription.generation, new Date().toISOString()),
      );
      this.subscriptions.delete(id);
      this.tombstones.set(id, subscription.generation);
      this.forget(id, subscription);
    });
  }

  async addStreams(id: string, body: unknown): Promise<Outcome<void>> {
    const parsed = parseStreamList(isRecord(body) ? body.streams : undefined, false);
    if (!parsed.ok) return parsed;
    const paths = parsed.value;
    return this.modify(id, "always", (subscription, { tails }) => {
      if (subscription.config.wakeStream !== null && paths.includes(subscription.config.wakeStream)) {
        return unchanged(subscription, refuse("INVALID_REQUEST", "a subscription cannot follow its own wake_stream"));
      }
      return { next: linkExplicit(subscription, paths, tails), result: ok() };
    }, paths);
  }

  async removeStream(id: string, rawPath: string): Promise<Outcome<void>> {
    const path = normalizeStreamPath(rawPath);
    if (path === undefined) return refuse("INVALID_REQUEST", "not a stream path");
    return this.modify(id, "when-idle", (subscription) => ({
      next: unlinkExplicit(subscription, path),
      result: ok(),
    }));
  }

  /** A webhook receiver acks (and heartbeats, or finishes with done: true). */
  callback(id: string, token: string | undefined, body: unknown): Promise<Outcome<AckView>> {
    return this.answerWake(id, "webhook", token, body);
  }

  /** A pull worker acks (and heartbeats, or finishes with done: true). */
  ack(id: string, token: string | undefined, body: unknown): Promise<Outcome<AckView>> {
    return this.answerWake(id, "pull-wake", token, body);
  }

  async claim(id: string, body: unknown): Promise<Outcome<ClaimView>> {
    const worker = parseWorker(body);
    if (!worker.ok) return worker;
    const token = newSecret("dsc");
    return this.modify(id, "always", (subscription, { tails, now }) => {
      if (subscription.config.type !== "pull-wake") {
        return unchanged(subscription, refuse("INVALID_REQUEST", "only pull-wake subscriptions are claimed"));
      }
      const claim = claimWake(subscription, worker.value, tails, now, { wakeId: newWakeId(), tokenHash: hashHex(token) });
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
    });
  }

  async release(id: string, token: string | undefined, body: unknown): Promise<Outcome<void>> {
    const request = parseWakeRequest(body);
    if (!request.ok) return request;
    return this.modify(id, "always", (subscription, context) => {
      const refusal = this.checkWake(subscription, "pull-wake", token, request.value);
      if (refusal) return unchanged(subscription, refusal);
      // Pending work left behind is woken again right away, for the next worker.
      return { next: context.wakeIfNeeded(finishWake(subscription)), result: ok() };
    });
  }

  private answerWake(
    id: string,
    type: "webhook" | "pull-wake",
    token: string | undefined,
    body: unknown,
  ): Promise<Outcome<AckView>> {
    const request = parseWakeRequest(body);
    if (!request.ok) return Promise.resolve(request);
    return this.modify(id, "always", (subscription, context) => {
      const refusal = this.checkWake(subscription, type, token, request.value);
      if (refusal) return unchanged(subscription, refusal);
      const acked = applyAcks(subscription, request.value.acks, context.tails);
      if (!acked.ok) return unchanged(subscription, refuse("INVALID_OFFSET", acked.message));
      if (!request.value.done) {
        return { next: extendLease(acked.subscription, context.now), result: { ok: true, value: { ok: true, next_wake: false } } };
      }
      const next = context.wakeIfNeeded(finishWake(acked.subscription));
      return { next, result: { ok: true, value: { ok: true, next_wake: next.wake !== null } } };
    });
  }

  private checkWake(
    subscription: Subscription,
    type: "webhook" | "pull-wake",
    token: string | undefined,
    request: WakeRequest,
  ): Outcome<never> | undefined {
    if (subscription.config.type !== type) {
      return refuse("INVALID_REQUEST", type === "webhook" ? "callbacks are for webhook subscriptions" : "acks and releases are for pull-wake subscriptions");
    }
    if (token === undefined) return refuse("TOKEN_INVALID", "a Bearer token for this wake is required");
    const check = checkWakeRequest(subscription, request, hashBuffer(token));
    if (check === "fenced") return refuse("FENCED", "this wake is over", { generation: subscription.generation });
    if (check === "token_invalid") return refuse("TOKEN_INVALID", "the token is not valid for this wake");
    return undefined;
  }

  // ---- The queue, the write and what follows it ----

  private exclusive<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const run = previous.then(task);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return run;
  }

  /**
   * The one way a live subscription changes: in its queue, with leases settled and tails
   * read first, and with the idle-and-pending invariant enforced after the step. The
   * result is persisted before it is returned; a failed write throws and changes nothing.
   */
  private modify<T>(
    id: string,
    tailNeed: TailNeed,
    step: (subscription: Subscription, context: StepContext) => Step<T>,
    extraPaths: readonly string[] = [],
  ): Promise<Outcome<T>> {
    return this.loaded.then(() => this.exclusive(id, () => this.update(id, tailNeed, step, extraPaths)));
  }

  /** The body of modify, for callers already in the subscription's queue. */
  private async update<T>(
    id: string,
    tailNeed: TailNeed,
    step: (subscription: Subscription, context: StepContext) => Step<T>,
    extraPaths: readonly string[],
  ): Promise<Outcome<T>> {
    const current = this.subscriptions.get(id);
    if (!current) return notFound();
    const now = Date.now();
    const settled = expireLease(current, now);
    const wanted = tailNeed === "always" || settled.wake === null ? [...Object.keys(settled.links), ...extraPaths] : [];
    const tails = await this.readTails(wanted);
    const context: StepContext = { tails, now, wakeIfNeeded: (subscription) => this.wakeIfNeeded(subscription, tails, now) };
    const { next, result } = step(settled, context);
    if (next.wake === null) {
      // Streams the step just linked count for the idle check too.
      const unread = Object.keys(next.links).filter((path) => !wanted.includes(path));
      for (const [path, tail] of await this.readTails(unread)) tails.set(path, tail);
    }
    const final = context.wakeIfNeeded(next);
    if (final !== current) {
      try {
        await this.options.records.putRecord(SUBSCRIPTION_KIND, id, encodeSubscription(final));
      } catch (error) {
        // A wake that was never recorded never happened; neither did its token.
        if (final.wake && final.wake.wakeId !== current.wake?.wakeId) this.liveTokens.delete(final.wake.wakeId);
        throw error;
      }
      this.subscriptions.set(id, final);
      if (current.wake && current.wake.wakeId !== final.wake?.wakeId) this.liveTokens.delete(current.wake.wakeId);
      this.act(final.id);
    }
    return result;
  }

  private wakeIfNeeded(subscription: Subscription, tails: Tails, now: number): Subscription {
    if (!needsWake(subscription, tails)) return subscription;
    const wakeId = newWakeId();
    let tokenHash: string | null = null;
    if (subscription.config.type === "webhook") {
      const token = newSecret("dsw");
      this.liveTokens.set(wakeId, token);
      tokenHash = hashHex(token);
    }
    return issueWake(subscription, tails, now, { wakeId, tokenHash });
  }

  /**
   * What the service does on its own after any change: start a delivery that is due,
   * and keep one timer per subscription for whichever comes next, lease expiry or retry.
   */
  private act(id: string): void {
    const existing = this.timers.get(id);
    if (existing) clearTimeout(existing);
    this.timers.delete(id);
    const subscription = this.subscriptions.get(id);
    if (!subscription || this.closed) return;
    const wake = subscription.wake;
    if (wake?.delivery && wake.delivery.nextAttemptAt <= Date.now() && !this.inFlight.has(wake.wakeId)) {
      void this.deliver(subscription);
    }
    const deadline = nextDeadline(subscription, wake !== null && this.inFlight.has(wake.wakeId));
    if (deadline !== undefined) this.setTimer(id, deadline - Date.now());
  }

  private setTimer(id: string, delayMs: number): void {
    const timer = setTimeout(() => void this.tick(id), Math.max(0, delayMs));
    timer.unref();
    this.timers.set(id, timer);
  }

  private async tick(id: string): Promise<void> {
    this.timers.delete(id);
    if (this.closed) return;
    try {
      // Settles an expired lease and re-wakes if work is pending; otherwise changes nothing.
      await this.modify(id, "when-idle", (subscription) => ({ next: subscription, result: ok() }));
    } catch (error) {
      this.options.logger.error({ err: error, subscription: id }, "subscription update failed; trying again shortly");
      this.retrySoon(id);
      return;
    }
    this.act(id);
  }

  /** After a failed write in the background: look at the subscription again in a moment. */
  private retrySoon(id: string): void {
    if (this.closed || !this.subscriptions.has(id)) return;
    const existing = this.timers.get(id);
    if (existing) clearTimeout(existing);
    this.setTimer(id, RETRY_AFTER_STORE_ERROR_MS);
  }

  // ---- Deliveries ----

  private async deliver(subscription: Subscription): Promise<void> {
    const { id } = subscription;
    const wakeId = subscription.wake!.wakeId;
    const controller = new AbortController();
    // Marked until the outcome is recorded, so that nothing starts this delivery twice.
    this.inFlight.set(wakeId, { subscriptionId: id, controller });
    let outcome: "accepted" | "done" | "failed";
    try {
      outcome =
        subscription.config.type === "webhook"
          ? await this.postWebhook(subscription, controller.signal)
          : await this.writeWakeEvent(subscription);
    } catch (error) {
      this.options.logger.error({ err: error, subscription: id }, "subscription delivery failed");
      outcome = "failed";
    }
    if (this.closed) return;
    try {
      // A wake that ended meanwhile (callback, deletion) is left alone: these transitions check the wake_id.
      await this.modify(id, "when-idle", (current, { now }) => {
        const next =
          outcome === "done"
            ? current.wake?.wakeId === wakeId
              ? finishWithSnapshot(current)
              : current
            : outcome === "accepted"
              ? deliverySucceeded(current, wakeId, now)
              : deliveryFailed(current, wakeId, now, Math.random);
        return { next, result: ok() };
      });
    } catch (error) {
      this.inFlight.delete(wakeId);
      this.options.logger.error({ err: error, subscription: id }, "could not record a delivery; trying again shortly");
      this.retrySoon(id);
      return;
    }
    this.inFlight.delete(wakeId);
    // A newer wake may have been issued while this one was on the wire.
    this.act(id);
  }

  private async postWebhook(subscription: Subscription, signal: AbortSignal): Promise<"accepted" | "done" | "failed"> {
    const check = checkWebhookUrl(subscription.config.webhookUrl ?? "", this.urlPolicy);
    if (!check.ok) {
      this.options.logger.warn({ subscription: subscription.id }, `webhook not sent: ${check.message}`);
      return "failed";
    }
    const current = await this.callbackTokenFor(subscription);
    if (!current) return "failed";
    const { subscription: latest, token } = current;
    const wake = latest.wake!;
    const rawBody = JSON.stringify({
      subscription_id: latest.id,
      wake_id: wake.wakeId,
      generation: latest.generation,
      streams: wakeStreamViews(latest),
      callback_url: this.controlUrl(`subscriptions/${encodeURIComponent(latest.id)}/callback`),
      callback_token: token,
    });
    const key = this.keys[this.keys.length - 1]!;
    const reply = await postJson(check.url, rawBody, {
      headers: { "webhook-signature": signatureHeader(key, rawBody, Math.floor(Date.now() / 1000)) },
      timeoutMs: this.deliveryTimeoutMs,
      signal,
      loopbackAllowed: check.loopbackAllowed,
      ...(this.options.resolveWebhookHost ? { resolve: this.options.resolveWebhookHost } : {}),
    });
    if (reply.kind === "response" && reply.status >= 200 && reply.status < 300) {
      return repliedDone(reply.body) ? "done" : "accepted";
    }
    // Only the host: URLs may carry credentials in their path or query.
    const failure = reply.kind === "response" ? `HTTP ${reply.status}` : reply.message;
    this.options.logger.warn(
      { subscription: latest.id, generation: latest.generation, host: check.url.host, attempt: (wake.delivery?.attempts ?? 0) + 1 },
      `webhook delivery failed: ${failure}`,
    );
    return "failed";
  }

  /**
   * The token travels in the webhook body, so we need its plaintext; after a restart only
   * the hash survived, and a new token is minted and its hash recorded before sending.
   */
  private async callbackTokenFor(subscription: Subscription): Promise<{ subscription: Subscription; token: string } | undefined> {
    const wakeId = subscription.wake!.wakeId;
    const known = this.liveTokens.get(wakeId);
    if (known !== undefined) return { subscription, token: known };
    const token = newSecret("dsw");
    await this.modify(subscription.id, "when-idle", (current) => ({
      next: addTokenHash(current, wakeId, hashHex(token)),
      result: ok(),
    }));
    const latest = this.subscriptions.get(subscription.id);
    if (latest?.wake?.wakeId !== wakeId) return undefined;
    this.liveTokens.set(wakeId, token);
    return { subscription: latest, token };
  }

  private async writeWakeEvent(subscription: Subscription): Promise<"accepted" | "failed"> {
    const wakeStream = subscription.config.wakeStream!;
    const wake = subscription.wake!;
    const event = {
      type: "wake",
      subscription_id: subscription.id,
      stream: Object.keys(wake.snapshot).sort()[0] ?? "",
      generation: subscription.generation,
      ts: Date.now(),
    };
    const result = await this.options.directory.appendJson(wakeStream, event);
    if (result === "appended") return "accepted";
    this.options.logger.warn(
      { subscription: subscription.id, wakeStream, result },
      "wake event not written; the wake stream must exist and take JSON",
    );
    return "failed";
  }

  // ---- Appends ----

  private observe(changes: Array<StreamTail & { created: boolean }>): void {
    if (this.closed) return;
    const relevant = changes.filter((change) => isApplicationStream(change.path));
    if (relevant.length === 0) return;
    for (const buffer of this.creating.values()) buffer.push(...relevant);
    for (const subscription of this.subscriptions.values()) {
      const mine = relevant.filter((change) => concerns(subscription, change.path));
      if (mine.length > 0) this.queueObserve(subscription.id, mine);
    }
  }

  /** At most one observe waits in a subscription's queue; later appends join it. */
  private queueObserve(id: string, changes: StreamChange[]): void {
    const waiting = this.queuedChanges.get(id);
    if (waiting) {
      waiting.push(...changes);
      return;
    }
    this.queuedChanges.set(id, [...changes]);
    this.exclusive(id, async () => {
      const batch = this.queuedChanges.get(id) ?? [];
      this.queuedChanges.delete(id);
      if (this.closed) return;
      await this.update(id, "when-idle", (subscription) => ({ next: observeAppends(subscription, batch), result: ok() }), []);
    }).catch((error: unknown) => {
      this.options.logger.error({ err: error, subscription: id }, "could not record appends; trying again shortly");
      this.retrySoon(id);
    });
  }

  // ---- Helpers ----

  private async readTails(paths: readonly string[]): Promise<Map<string, string>> {
    const unique = [...new Set(paths)];
    const offsets = await Promise.all(unique.map((path) => this.options.directory.tailOffset(path)));
    const tails = new Map<string, string>();
    unique.forEach((path, index) => {
      const offset = offsets[index];
      if (offset !== undefined) tails.set(path, offset);
    });
    return tails;
  }

  private forget(id: string, subscription: Subscription): void {
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
    this.queuedChanges.delete(id);
    if (subscription.wake) this.liveTokens.delete(subscription.wake.wakeId);
    for (const [wakeId, delivery] of this.inFlight) {
      if (delivery.subscriptionId === id) {
        delivery.controller.abort();
        this.inFlight.delete(wakeId);
      }
    }
  }

  private async loadSigningKeys(): Promise<void> {
    const keys: SigningKey[] = [];
    for (const record of await this.options.records.listRecords(SIGNING_KEY_KIND)) {
      try {
        keys.push(signingKeyFromRecord(record.value));
      } catch (error) {
        this.options.logger.error({ err: error, kid: record.key }, "webhook signing key unreadable; skipped");
      }
    }
    if (keys.length === 0) {
      const key = createSigningKey();
      await this.options.records.putRecord(SIGNING_KEY_KIND, key.kid, signingKeyToRecord(key));
      keys.push(key);
    }
    // Oldest first: the newest signs, every one stays published for receivers of older signatures.
    this.keys = keys.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  private controlUrl(rest: string): string {
    return `${this.options.baseUrl()}${RESERVED_ROOT}/${rest}`;
  }

  private view(subscription: Subscription): SubscriptionView {
    const { config } = subscription;
    const key = this.keys[this.keys.length - 1];
    return {
      id: subscription.id,
      subscription_id: subscription.id,
      type: config.type,
      pattern: config.pattern,
      streams: linkViews(subscription),
      webhook:
        config.webhookUrl === null || key === undefined
          ? null
          : { url: config.webhookUrl, signing: { alg: "ed25519", kid: key.kid, jwks_url: this.controlUrl("jwks.json") } },
      wake_stream: config.wakeStream,
      lease_ttl_ms: config.leaseTtlMs,
      created_at: subscription.createdAt,
      status: subscriptionStatus(subscription),
      description: config.description,
    };
  }
}

function ok(): Outcome<void> {
  return { ok: true, value: undefined };
}

function notFound(): Outcome<never> {
  return refuse("SUBSCRIPTION_NOT_FOUND", "no such subscription");
}

function unchanged<T>(subscription: Subscription, result: Outcome<T>): Step<T> {
  return { next: subscription, result };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** 256 random bits; the prefix says what a leaked string is (w: webhook callback, c: claim). */
function newSecret(prefix: "dsw" | "dsc"): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

function newWakeId(): string {
  return `w_${randomBytes(12).toString("base64url")}`;
}

function hashBuffer(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

function hashHex(token: string): string {
  return hashBuffer(token).toString("hex");
}
