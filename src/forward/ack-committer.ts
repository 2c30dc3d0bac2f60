/*
 * Commits a consumer's offset after deliveries, without a round trip per event: at
 * most one ack request is in flight, carrying the newest delivered offset; failures
 * are retried with the next one. A crash can therefore repeat only what was delivered
 * since the last ack the server confirmed — `unacked` bounds that number.
 */
import type { TailhookClient } from "../client/client.js";

export class AckCommitter {
  private latest: { offset: string; count: number } | undefined;
  private confirmedCount = 0;
  private deliveredCount = 0;
  private sending: Promise<void> | undefined;
  private waiters: Array<() => void> = [];

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
    this.sending ??= this.sendLoop();
  }

  /** Resolves once at most `limit` events are waiting for their ack. */
  async waitUntilUnackedAtMost(limit: number): Promise<void> {
    while (this.unacked > limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Sends what is pending and resolves when the server confirmed it (or `signal` aborts). */
  async flush(signal?: AbortSignal): Promise<void> {
    while (this.unacked > 0 && !signal?.aborted) {
      this.sending ??= this.sendLoop();
      await Promise.race([this.sending, new Promise((resolve) => signal?.addEventListener("abort", resolve, { once: true }))]);
    }
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
      } catch (error) {
        this.onError(error);
        failures++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** failures)));
      }
    }
    this.sending = undefined;
  }
}
