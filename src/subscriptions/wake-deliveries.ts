/*
 * What the subscription service does on its own after a change: deliver a wake that is
 * due (a signed webhook POST, or a wake event appended to the wake stream) and keep one
 * timer per subscription for whichever comes next, lease expiry or retry.
 *
 * Deliveries are at least once: a wake whose POST may or may not have arrived before a
 * crash is sent again, fenced by the same generation and wake_id. Every outcome is
 * recorded through the subscription's queue, so it never races a callback or an ack.
 */
import type { Logger } from "pino";
import { postJson, repliedDone, type WebhookResolver } from "./delivery.js";
import type { StreamDirectory } from "./ports.js";
import { signatureHeader, type SigningKey } from "./signing.js";
import {
  addTokenHash,
  deliveryFailed,
  deliverySucceeded,
  finishWithSnapshot,
  nextDeadline,
  wakeStreamViews,
  type Subscription,
} from "./subscription-state.js";
import { ok, type SubscriptionQueue } from "./subscription-queue.js";
import { hashHex, newSecret } from "./wake-secrets.js";
import { checkWebhookUrl, type WebhookUrlPolicy } from "./webhook-url.js";

const RETRY_AFTER_STORE_ERROR_MS = 1_000;

export interface WakeDeliveriesOptions {
  queue: SubscriptionQueue;
  directory: StreamDirectory;
  logger: Logger;
  urlPolicy: WebhookUrlPolicy;
  deliveryTimeoutMs: number;
  resolveWebhookHost?: WebhookResolver;
  /** The newest signing key, the one that signs. */
  signingKey: () => SigningKey;
  callbackUrl: (subscriptionId: string) => string;
}

type DeliveryOutcome = "accepted" | "done" | "failed";

export class WakeDeliveries {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Deliveries on the wire, by wake_id. */
  private readonly inFlight = new Map<string, { subscriptionId: string; controller: AbortController }>();
  private closed = false;

  constructor(private readonly options: WakeDeliveriesOptions) {}

  /** Start a delivery that is due, and set the subscription's one timer for what comes next. */
  act(id: string): void {
    this.clearTimer(id);
    const subscription = this.options.queue.live.get(id);
    if (!subscription || this.closed) return;
    const wake = subscription.wake;
    if (wake?.delivery && wake.delivery.nextAttemptAt <= Date.now() && !this.inFlight.has(wake.wakeId)) {
      void this.deliver(subscription);
    }
    const deadline = nextDeadline(subscription, wake !== null && this.inFlight.has(wake.wakeId));
    if (deadline !== undefined) this.setTimer(id, deadline - Date.now());
  }

  /** After a failed write in the background: look at the subscription again in a moment. */
  retrySoon(id: string): void {
    if (this.closed || !this.options.queue.live.has(id)) return;
    this.clearTimer(id);
    this.setTimer(id, RETRY_AFTER_STORE_ERROR_MS);
  }

  /** A deleted subscription: its timer stops and its deliveries are aborted. */
  forget(id: string): void {
    this.clearTimer(id);
    for (const [wakeId, delivery] of this.inFlight) {
      if (delivery.subscriptionId === id) {
        delivery.controller.abort();
        this.inFlight.delete(wakeId);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const { controller } of this.inFlight.values()) controller.abort();
  }

  private clearTimer(id: string): void {
    const existing = this.timers.get(id);
    if (existing) clearTimeout(existing);
    this.timers.delete(id);
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
      await this.options.queue.modify(id, "when-idle", (subscription) => ({ next: subscription, result: ok() }));
    } catch (error) {
      this.options.logger.error({ err: error, subscription: id }, "subscription update failed; trying again shortly");
      this.retrySoon(id);
      return;
    }
    this.act(id);
  }

  private async deliver(subscription: Subscription): Promise<void> {
    const { id } = subscription;
    const wakeId = subscription.wake!.wakeId;
    const controller = new AbortController();
    // Marked until the outcome is recorded, so that nothing starts this delivery twice.
    this.inFlight.set(wakeId, { subscriptionId: id, controller });
    let outcome: DeliveryOutcome;
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
      await this.options.queue.modify(id, "when-idle", (current, { now }) => {
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

  private async postWebhook(subscription: Subscription, signal: AbortSignal): Promise<DeliveryOutcome> {
    const check = checkWebhookUrl(subscription.config.webhookUrl ?? "", this.options.urlPolicy);
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
      callback_url: this.options.callbackUrl(latest.id),
      callback_token: token,
    });
    const reply = await postJson(check.url, rawBody, {
      headers: { "webhook-signature": signatureHeader(this.options.signingKey(), rawBody, Math.floor(Date.now() / 1000)) },
      timeoutMs: this.options.deliveryTimeoutMs,
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
    const { queue } = this.options;
    const wakeId = subscription.wake!.wakeId;
    const known = queue.tokenFor(wakeId);
    if (known !== undefined) return { subscription, token: known };
    const token = newSecret("dsw");
    await queue.modify(subscription.id, "when-idle", (current) => ({
      next: addTokenHash(current, wakeId, hashHex(token)),
      result: ok(),
    }));
    const latest = queue.live.get(subscription.id);
    if (latest?.wake?.wakeId !== wakeId) return undefined;
    queue.rememberToken(wakeId, token);
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
}
