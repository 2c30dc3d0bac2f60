/*
 * Runs every source when it is due, one run per source at a time, in the one
 * process that leads (on PostgreSQL the leader of "sources"; on SQLite the only
 * process). Definitions are re-read from the records table each tick, so a source
 * created through any process is picked up; each run's outcome is written back as
 * the source's state, which the API shows.
 */
import type { Logger } from "pino";
import type { Store } from "../storage/store.js";
import type { LeaderWork } from "../subscriptions/follow-leadership.js";
import { nextRunAt } from "./backoff.js";
import { runGithub } from "./github.js";
import { runPoll } from "./poll.js";
import { RequestBudget, SourceRunError } from "./provider-http.js";
import type { SourceRecords } from "./records.js";
import type { RunContext } from "./run-context.js";
import { DEFAULT_STRIPE_MAX_EVENTS_PER_RUN, runStripe } from "./stripe.js";
import type { SourceDefinition, SourceState } from "./types.js";

export interface SourceRunnerOptions {
  store: Store;
  records: SourceRecords;
  apiUrls: { github: string; stripe: string };
  maxBodyBytes: number;
  logger: Logger;
  tickMs?: number;
  /** Events a Stripe run lists at most (default 10,000); a larger backlog takes several runs. */
  stripeMaxEventsPerRun?: number;
}

const DEFAULT_TICK_MS = 500;
const RECENT_ERRORS = 5;
/** Every this many ticks, sources whose inbox was deleted are removed. */
const ORPHAN_SWEEP_TICKS = 10;

/** IMAP's client (imapflow) is loaded on the first IMAP run: it costs tens of MiB in every process that has none. */
const runImap = async (ctx: RunContext) => (await import("./imap.js")).runImap(ctx);

const RUNS = { github: runGithub, stripe: runStripe, poll: runPoll, imap: runImap } as const;

export class SourceRunner implements LeaderWork {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private leading = false;
  private ticks = 0;

  constructor(private readonly options: SourceRunnerOptions) {}

  async lead(): Promise<void> {
    if (this.leading) return;
    this.leading = true;
    this.schedule(0);
  }

  /** Stops starting runs and waits for those in flight, so no two processes run one source. */
  async follow(): Promise<void> {
    this.leading = false;
    clearTimeout(this.timer);
    await this.ticking;
    await Promise.allSettled([...this.running.values()]);
  }

  close(): Promise<void> {
    return this.follow();
  }

  private schedule(delayMs: number): void {
    if (!this.leading) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .catch((error: unknown) => this.options.logger.warn({ err: error }, "sources: reading the source list failed"))
        .finally(() => this.schedule(this.options.tickMs ?? DEFAULT_TICK_MS));
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const { records } = this.options;
    const [definitions, states, requested] = await Promise.all([records.definitions(), records.states(), records.runRequests()]);
    const now = Date.now();
    const ids = new Set(definitions.map((source) => source.id));
    for (const id of states.keys()) if (!ids.has(id) && !this.running.has(id)) await records.removeState(id);
    for (const id of requested) if (!ids.has(id)) await records.clearRunRequest(id);
    if (this.ticks++ % ORPHAN_SWEEP_TICKS === 0) await this.removeOrphans(definitions);
    for (const source of definitions) {
      if (!this.leading || this.running.has(source.id)) continue;
      const state = states.get(source.id);
      const asked = requested.includes(source.id);
      const due = state === undefined || now >= state.nextRunAt || (asked && now >= (state.rateLimitedUntil ?? 0));
      if (!due) continue;
      const run = (async () => {
        if (asked) await records.clearRunRequest(source.id);
        await this.runOnce(source, state);
      })()
        .catch((error: unknown) =>
          this.options.logger.error({ err: error, source: source.id }, "sources: a run could not record its outcome"),
        )
        .finally(() => this.running.delete(source.id));
      this.running.set(source.id, run);
    }
  }

  /** Deleting an inbox deletes its sources (and their credentials) too. */
  private async removeOrphans(definitions: SourceDefinition[]): Promise<void> {
    if (definitions.length === 0) return;
    const inboxes = new Set((await this.options.store.listInboxes()).map((inbox) => inbox.id));
    for (const source of definitions) {
      if (!inboxes.has(source.inboxId) && !this.running.has(source.id)) await this.options.records.remove(source.id);
    }
  }

  private async runOnce(source: SourceDefinition, previous: SourceState | undefined): Promise<void> {
    const { store, records, logger } = this.options;
    const inbox = await store.getInbox(source.inboxId);
    if (!inbox) {
      // The inbox is gone, and its sources with it.
      await records.remove(source.id);
      return;
    }
    const state: SourceState = previous ?? { lastRun: null, nextRunAt: 0, failures: 0 };
    const startedAt = Date.now();
    const ctx: RunContext = {
      source,
      state,
      inbox,
      store,
      apiUrls: this.options.apiUrls,
      maxBodyBytes: this.options.maxBodyBytes,
      budget: new RequestBudget(),
      counts: { listed: 0, missing: 0, appended: 0 },
      changes: {},
      complete: true,
      stripeMaxEventsPerRun: this.options.stripeMaxEventsPerRun ?? DEFAULT_STRIPE_MAX_EVENTS_PER_RUN,
      now: startedAt,
    };
    let error: string | null = null;
    let retryAt = 0;
    try {
      await RUNS[source.config.kind](ctx);
    } catch (caught) {
      // A store failure is as much a failed run as a provider's: it is retried with back-off.
      error = caught instanceof Error ? caught.message : String(caught);
      retryAt = caught instanceof SourceRunError ? (caught.retryAt ?? 0) : 0;
      logger.warn({ source: source.id, inbox: source.inboxId, kind: source.config.kind, error }, "sources: run failed");
    }
    const finishedAt = Date.now();
    const failures = error === null ? 0 : state.failures + 1;
    const rateLimitedUntil = Math.max(retryAt, ctx.budget.pausedUntil);
    const next: SourceState = {
      ...state,
      ...ctx.changes,
      lastRun: { startedAt, finishedAt, ...ctx.counts, complete: error === null && ctx.complete, error },
      failures,
      recentErrors: error === null ? state.recentErrors : [...(state.recentErrors ?? []), { at: finishedAt, error }].slice(-RECENT_ERRORS),
      nextRunAt: nextRunAt(finishedAt, source.intervalSeconds * 1000, failures, rateLimitedUntil),
      ...(rateLimitedUntil > finishedAt ? { rateLimitedUntil } : { rateLimitedUntil: undefined }),
    };
    await records.putState(source.id, next);
  }
}
