/*
 * The subscription service: answers the subscription API's requests and feeds appends
 * to the subscriptions that follow them. Every change goes through the subscription's
 * persisted queue (subscription-queue.ts), which writes the new state to the record
 * store before anyone is told; what happens on its own afterwards (webhook POSTs, wake
 * events, lease and retry timers) is wake-deliveries.ts.
 *
 * The record store is the truth across restarts; start() reloads it, links streams that
 * appeared while we were not looking, expires overdue leases and resumes owed deliveries.
 */
import type { Logger } from "pino";
import type { WebhookResolver } from "./delivery.js";
import { refuse, type Outcome } from "./errors.js";
import type { RecordStore, StreamDirectory, StreamTail } from "./ports.js";
import { decodeSubscription, encodeSubscription, encodeTombstone, SUBSCRIPTION_KIND } from "./records.js";
import { configHash, parseStreamList, parseSubscriptionConfig, parseWakeRequest, parseWorker } from "./requests.js";
import { loadSigningKeys } from "./signing-keys.js";
import { jwkSet, type SigningKey } from "./signing.js";
import {
  concerns,
  linkExplicit,
  linkMissedStreams,
  newSubscription,
  observeAppends,
  unlinkExplicit,
  type StreamChange,
  type Subscription,
} from "./subscription-state.js";
import { notFound, ok, SubscriptionQueue, unchanged } from "./subscription-queue.js";
import { viewSubscription, type AckView, type ClaimView, type SubscriptionView } from "./subscription-views.js";
import { isApplicationStream, normalizeStreamPath } from "./stream-paths.js";
import { WakeDeliveries } from "./wake-deliveries.js";
import { answerStep, claimStep, releaseStep } from "./wake-steps.js";
import { newSecret } from "./wake-secrets.js";
import type { WebhookUrlPolicy } from "./webhook-url.js";

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

const RESERVED_ROOT = "/v1/stream/__ds";
const DEFAULT_DELIVERY_TIMEOUT_MS = 10_000;

export class SubscriptionService {
  private readonly queue: SubscriptionQueue;
  private readonly deliveries: WakeDeliveries;
  /** Last generation of deleted subscriptions, so a re-created id keeps counting upwards. */
  private readonly tombstones = new Map<string, number>();
  /** Appends waiting for one queued observe per subscription, so bursts collapse into one update. */
  private readonly queuedChanges = new Map<string, StreamChange[]>();
  /** Appends seen while a subscription is being created, replayed once it exists. */
  private readonly creating = new Map<string, StreamChange[]>();
  private readonly urlPolicy: WebhookUrlPolicy;
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
    this.loaded = new Promise<void>((resolve, reject) => {
      this.markLoaded = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.loaded.catch(() => undefined);
    this.queue = new SubscriptionQueue({
      directory: options.directory,
      records: options.records,
      loaded: this.loaded,
      onChange: (id) => this.deliveries.act(id),
    });
    this.deliveries = new WakeDeliveries({
      queue: this.queue,
      directory: options.directory,
      logger: options.logger,
      urlPolicy: this.urlPolicy,
      deliveryTimeoutMs: options.deliveryTimeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS,
      ...(options.resolveWebhookHost ? { resolveWebhookHost: options.resolveWebhookHost } : {}),
      signingKey: () => this.keys[this.keys.length - 1]!,
      callbackUrl: (id) => this.controlUrl(`subscriptions/${encodeURIComponent(id)}/callback`),
    });
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
    this.keys = await loadSigningKeys(this.options.records, this.options.logger);
    for (const record of await this.options.records.listRecords(SUBSCRIPTION_KIND)) {
      try {
        const stored = decodeSubscription(record.value);
        if (stored.kind === "live") this.queue.live.set(record.key, stored.subscription);
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
    for (const id of [...this.queue.live.keys()]) {
      await this.queue.modify(id, "always", (subscription) => ({
        next: linkMissedStreams(subscription, streams),
        result: ok(),
      }));
      this.deliveries.act(id);
    }
  }

  /** Stops timers and deliveries and waits for updates under way; later appends are ignored. */
  async close(): Promise<void> {
    this.closed = true;
    this.deliveries.close();
    await this.queue.settle();
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
    return this.queue.exclusive(id, async () => {
      const existing = this.queue.live.get(id);
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
          explicitTails: await this.queue.readTails(config.streams),
        });
        await this.options.records.putRecord(SUBSCRIPTION_KIND, id, encodeSubscription(subscription));
        this.queue.live.set(id, subscription);
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
    const subscription = this.queue.live.get(id);
    return subscription ? { ok: true, value: this.view(subscription) } : notFound();
  }

  /** Tombstones the subscription; callbacks, acks and releases for it then fail without effect. */
  async delete(id: string): Promise<void> {
    await this.loaded;
    await this.queue.exclusive(id, async () => {
      const subscription = this.queue.live.get(id);
      if (!subscription) return;
      await this.options.records.putRecord(SUBSCRIPTION_KIND, id, encodeTombstone(id, subscription.generation, new Date().toISOString()));
      this.queue.live.delete(id);
      this.tombstones.set(id, subscription.generation);
      this.forget(id, subscription);
    });
  }

  async addStreams(id: string, body: unknown): Promise<Outcome<void>> {
    const parsed = parseStreamList(isRecord(body) ? body.streams : undefined, false);
    if (!parsed.ok) return parsed;
    const paths = parsed.value;
    return this.queue.modify(
      id,
      "always",
      (subscription, { tails }) => {
        if (subscription.config.wakeStream !== null && paths.includes(subscription.config.wakeStream)) {
          return unchanged(subscription, refuse("INVALID_REQUEST", "a subscription cannot follow its own wake_stream"));
        }
        return { next: linkExplicit(subscription, paths, tails), result: ok() };
      },
      paths,
    );
  }

  async removeStream(id: string, rawPath: string): Promise<Outcome<void>> {
    const path = normalizeStreamPath(rawPath);
    if (path === undefined) return refuse("INVALID_REQUEST", "not a stream path");
    return this.queue.modify(id, "when-idle", (subscription) => ({
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
    return this.queue.modify(id, "always", claimStep(worker.value, newSecret("dsc")));
  }

  async release(id: string, token: string | undefined, body: unknown): Promise<Outcome<void>> {
    const request = parseWakeRequest(body);
    if (!request.ok) return request;
    return this.queue.modify(id, "always", releaseStep(token, request.value));
  }

  private answerWake(id: string, type: "webhook" | "pull-wake", token: string | undefined, body: unknown): Promise<Outcome<AckView>> {
    const request = parseWakeRequest(body);
    if (!request.ok) return Promise.resolve(request);
    return this.queue.modify(id, "always", answerStep(type, token, request.value));
  }

  // ---- Appends ----

  private observe(changes: Array<StreamTail & { created: boolean }>): void {
    if (this.closed) return;
    const relevant = changes.filter((change) => isApplicationStream(change.path));
    if (relevant.length === 0) return;
    for (const buffer of this.creating.values()) buffer.push(...relevant);
    for (const subscription of this.queue.live.values()) {
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
    this.queue
      .exclusive(id, async () => {
        const batch = this.queuedChanges.get(id) ?? [];
        this.queuedChanges.delete(id);
        if (this.closed) return;
        await this.queue.update(id, "when-idle", (subscription) => ({ next: observeAppends(subscription, batch), result: ok() }), []);
      })
      .catch((error: unknown) => {
        this.options.logger.error({ err: error, subscription: id }, "could not record appends; trying again shortly");
        this.deliveries.retrySoon(id);
      });
  }

  // ---- Helpers ----

  private forget(id: string, subscription: Subscription): void {
    this.deliveries.forget(id);
    this.queuedChanges.delete(id);
    if (subscription.wake) this.queue.forgetToken(subscription.wake.wakeId);
  }

  private controlUrl(rest: string): string {
    return `${this.options.baseUrl()}${RESERVED_ROOT}/${rest}`;
  }

  private view(subscription: Subscription): SubscriptionView {
    return viewSubscription(subscription, this.keys[this.keys.length - 1], this.controlUrl("jwks.json"));
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
