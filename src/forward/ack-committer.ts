/*
 * Commits a consumer's offset after deliveries, without a round trip per event: at
 * most one ack request is in flight, carrying the newest delivered offset; failures
 * are retried with the next one. After a confirmed ack the next one waits up to 50 ms
 * or until 50 events are pending, so a fast target costs one ack per ~50 events, not
 * one per few. A crash can repeat only what was delivered since the last ack the
 * server confirmed — `unacked` bounds that number.
 */
const ACK_EVERY_MS = 50;
const ACK_EVERY_EVENTS = 50;

import type { TailhookClient } from "../client/client.js";

export class AckCommitter {
  private latest: { offset: string; count: number } | undefined;
  private confirmedCount = 0;
  private deliveredCount = 0;
  private sending: Promise<void> | undefined;
  private waiters: Array<() => void> = [];
  /** Ends the pause between acks early (enough pending, or a flush). */
  private nudge: (() => void) | undefined;

  constructor(
    private readonly client: TailhookClient,
    private readonly inboxId: string,
    private readonly consumer: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Delivered (or skipped) events whose commit the server has not confirmed yet. */
  get unacked(): number {
    return this.deliveredCount - this.confirmedCount;
  }

  commit(offset: string): void {
    this.deliveredCount++;
    this.latest = { offset, count: this.deliveredCount };
    if (this.unacked >= ACK_EVERY_EVENTS) this.nudge?.();
    this.sending ??= this.sendLoop();
  }

  /** Resolves once at most `limit` events are waiting for their ack. */
  async waitUntilUnackedAtMost(limit: number): Promise<void> {
    while (this.unacked > limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Sends what is pending and resolves when the server confirmed it (or `signal` aborts). */
  async flush(signal?: AbortSignal): Promise<void> {
    while (this.unacked > 0 && !signal?.aborted) {
      this.nudge?.();
      this.sending ??= this.sendLoop();
      await Promise.race([this.sending, new Promise((resolve) => signal?.addEventListener("abort", resolve, { once: true }))]);
    }
  }

  private async pauseBeforeNextAck(): Promise<void> {
    if (this.unacked >= ACK_EVERY_EVENTS || this.unacked === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ACK_EVERY_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.nudge = done;
    });
    this.nudge = undefined;
  }

  private async sendLoop(): Promise<void> {
    let failures = 0;
    while (this.latest && this.latest.count > this.confirmedCount) {
      const { offset, count } = this.latest;
      try {
        await this.client.ack(this.inboxId, this.consumer, offset);
        this.confirmedCount = Math.max(this.confirmedCount, count);
        failures = 0;
        for (const wake of this.waiters.splice(0)) wake();
        await this.pauseBeforeNextAck();
      } catch (error) {
        this.onError(error);
        failures++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** failures)));
      }
    }
    this.sending = undefined;
  }
}
