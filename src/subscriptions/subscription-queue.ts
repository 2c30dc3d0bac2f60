/*
 * The persisted per-subscription queue: every live subscription in memory, changed only
 * inside its own queue (so requests, appends and timers never interleave on it), and
 * written to the record store before the change is visible or anyone is told.
 *
 * It also keeps the webhook callback tokens in plaintext (memory only; the records keep
 * their hashes), because a wake and its token are born and die in the same write.
 */
import { refuse, type Outcome } from "./errors.js";
import type { RecordStore, StreamDirectory } from "./ports.js";
import { encodeSubscription, SUBSCRIPTION_KIND } from "./records.js";
import { expireLease, issueWake, needsWake, type Subscription, type Tails } from "./subscription-state.js";
import { hashHex, newSecret, newWakeId } from "./wake-secrets.js";

export interface StepContext {
  tails: Map<string, string>;
  now: number;
  /** Issues a wake when the subscription is idle with pending work (the protocol's invariant). */
  wakeIfNeeded: (subscription: Subscription) => Subscription;
}

export interface Step<T> {
  next: Subscription;
  result: Outcome<T>;
}

/** "always": the step looks at tails. "when-idle": only the idle check does (cheap while a wake is out). */
export type TailNeed = "always" | "when-idle";

export interface SubscriptionQueueOptions {
  directory: StreamDirectory;
  records: RecordStore;
  /** Settles once the records are loaded; changes wait for it. */
  loaded: Promise<void>;
  /** Called after every persisted change, to act on the new state (deliveries, timers). */
  onChange: (id: string) => void;
}

export class SubscriptionQueue {
  /** The in-memory truth, as last persisted; change it only inside exclusive(). */
  readonly live = new Map<string, Subscription>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Webhook callback tokens by wake_id, in memory only: records keep just their hashes. */
  private readonly liveTokens = new Map<string, string>();

  constructor(private readonly options: SubscriptionQueueOptions) {}

  exclusive<T>(id: string, task: () => Promise<T>): Promise<T> {
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

  /** Waits for every update under way. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.queues.values()]);
  }

  /**
   * The one way a live subscription changes: in its queue, with leases settled and tails
   * read first, and with the idle-and-pending invariant enforced after the step. The
   * result is persisted before it is returned; a failed write throws and changes nothing.
   */
  modify<T>(
    id: string,
    tailNeed: TailNeed,
    step: (subscription: Subscription, context: StepContext) => Step<T>,
    extraPaths: readonly string[] = [],
  ): Promise<Outcome<T>> {
    return this.options.loaded.then(() => this.exclusive(id, () => this.update(id, tailNeed, step, extraPaths)));
  }

  /** The body of modify, for callers already in the subscription's queue. */
  async update<T>(
    id: string,
    tailNeed: TailNeed,
    step: (subscription: Subscription, context: StepContext) => Step<T>,
    extraPaths: readonly string[],
  ): Promise<Outcome<T>> {
    const current = this.live.get(id);
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
      this.live.set(id, final);
      if (current.wake && current.wake.wakeId !== final.wake?.wakeId) this.liveTokens.delete(current.wake.wakeId);
      this.options.onChange(final.id);
    }
    return result;
  }

  async readTails(paths: readonly string[]): Promise<Map<string, string>> {
    const unique = [...new Set(paths)];
    const offsets = await Promise.all(unique.map((path) => this.options.directory.tailOffset(path)));
    const tails = new Map<string, string>();
    unique.forEach((path, index) => {
      const offset = offsets[index];
      if (offset !== undefined) tails.set(path, offset);
    });
    return tails;
  }

  tokenFor(wakeId: string): string | undefined {
    return this.liveTokens.get(wakeId);
  }

  rememberToken(wakeId: string, token: string): void {
    this.liveTokens.set(wakeId, token);
  }

  forgetToken(wakeId: string): void {
    this.liveTokens.delete(wakeId);
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
}

export function ok(): Outcome<void> {
  return { ok: true, value: undefined };
}

export function notFound(): Outcome<never> {
  return refuse("SUBSCRIPTION_NOT_FOUND", "no such subscription");
}

/** A step that refuses (or answers) without changing the subscription. */
export function unchanged<T>(subscription: Subscription, result: Outcome<T>): Step<T> {
  return { next: subscription, result };
}
