/*
 * What one run of a source gets, and the one way runs append: with the inbox's
 * dedupe key, in the store's transaction, so a reconciled copy and its webhook
 * delivery can never both land, whichever comes first.
 */
import { dedupeWindowMs } from "../core/dedupe.js";
import { newEventId } from "../core/ids.js";
import type { CapturedRequest, EventOrigin, StoredInbox } from "../core/types.js";
import type { Store } from "../storage/store.js";
import type { RequestBudget } from "./provider-http.js";
import { SourceRunError } from "./provider-http.js";
import type { SourceDefinition, SourceState, StateChanges } from "./types.js";

export interface RunCounts {
  listed: number;
  missing: number;
  appended: number;
  skipped?: number;
}

export interface RunContext {
  source: SourceDefinition;
  state: SourceState;
  inbox: StoredInbox;
  store: Store;
  apiUrls: { github: string; stripe: string };
  /** The server's body limit, for inboxes without their own. */
  maxBodyBytes: number;
  budget: RequestBudget;
  /** Filled in as the run goes, so a run that fails half-way still reports what it did. */
  counts: RunCounts;
  /** State to keep, also after a failed run (set only what is true so far). */
  changes: StateChanges;
  /** The run reconciled everything it could see; a run that stopped at its cap sets false. */
  complete: boolean;
  /** Stripe: events listed per run at most. */
  stripeMaxEventsPerRun: number;
  now: number;
}

export const USER_AGENT = "tailhook-reconciler";

/** How far back a run may look: inside the dedupe window (with a minute's margin), or a copy could double an old delivery. */
export function lookbackStart(ctx: RunContext): number {
  const dedupe = ctx.inbox.settings.dedupe;
  if (!dedupe) throw new SourceRunError("the inbox no longer has settings.dedupe; reconciling would double delivered events");
  return ctx.now - dedupeWindowMs(dedupe) + 60_000;
}

export function newRequest(ctx: RunContext, origin: EventOrigin, rawHeaders: string[], body: Buffer): CapturedRequest {
  return {
    id: newEventId(),
    receivedAt: Date.now(),
    method: origin === "poll" ? "GET" : "POST",
    path: "",
    query: "",
    rawHeaders,
    remoteAddr: "",
    body,
    annotations: { origin, source: ctx.source.id },
  };
}

/** Appends unless an event with `key` is already in the inbox's window; true when appended. */
export async function appendOnce(ctx: RunContext, request: CapturedRequest, key: string): Promise<boolean> {
  const windowMs = dedupeWindowMs(ctx.inbox.settings.dedupe!);
  const result = await ctx.store.appendEvent(ctx.inbox.streamId, request, { dedupe: { key, windowMs } });
  if (result.status === "not_found") throw new SourceRunError("the inbox was deleted");
  if (result.status === "appended") ctx.counts.appended += 1;
  return result.status === "appended";
}
