/*
 * Stripe: reconcile the events list (newest first) against the inbox, in bounded
 * runs that always make progress. Two cursors, kept in the source's state:
 * - after: the newest event reconciled, everything older than it handled. A run
 *   pages from it toward newer events with `ending_before` (each page is the one
 *   just newer, still newest first), appends each page oldest first, and moves the
 *   cursor after every page it fully handled.
 * - before: while there is no `after` yet (the first run, or the cursor aged out of
 *   the lookback), the run looks for the oldest event in the lookback, paging toward
 *   older events with `starting_after` from the newest; when it gets there it appends
 *   what it listed in that run, oldest first, and sets `after`. A search longer than
 *   the cap continues from `before` in the next run.
 * Every run lists at most the cap (10,000 events by default), so a backlog larger
 * than that is worked off over several runs instead of failing forever. Appended
 * events are the event JSON as Stripe's webhooks send it; the "stripe" dedupe preset
 * keys on the body's /id, so a later webhook of the same event is a duplicate.
 */
import { dedupeKeyOf } from "../core/dedupe.js";
import { expectJson, providerRequest, providerUrl, SourceRunError } from "./provider-http.js";
import { appendOnce, lookbackStart, newRequest, USER_AGENT, type RunContext } from "./run-context.js";
import type { StripeCursor } from "./types.js";

export const DEFAULT_STRIPE_MAX_EVENTS_PER_RUN = 10_000;
const PAGE_LIMIT = 100;
const EVENT_ID = /^evt_[A-Za-z0-9_]{1,200}$/;

interface ListedEvent {
  id: string;
  created: number;
  event: unknown;
}

function parseEvent(item: unknown): ListedEvent {
  const record = (item ?? {}) as Record<string, unknown>;
  if (
    typeof record.id !== "string" ||
    !EVENT_ID.test(record.id) ||
    typeof record.created !== "number" ||
    !Number.isSafeInteger(record.created)
  ) {
    throw new SourceRunError("the events list has an entry without a valid id and created");
  }
  return { id: record.id, created: record.created, event: item };
}

async function listPage(
  ctx: RunContext,
  query: { limit: number; createdSince: number; starting_after?: string; ending_before?: string },
): Promise<{ events: ListedEvent[]; hasMore: boolean }> {
  const url = providerUrl(ctx.apiUrls.stripe, ["v1", "events"], {
    limit: query.limit,
    "created[gte]": query.createdSince,
    starting_after: query.starting_after,
    ending_before: query.ending_before,
  });
  const response = await providerRequest(
    url,
    { headers: { authorization: `Bearer ${ctx.source.credentials.secretKey}`, "user-agent": USER_AGENT }, timeoutMs: ctx.source.timeoutMs },
    ctx.budget,
  );
  const answer = expectJson(response, "listing events") as { data?: unknown; has_more?: unknown };
  if (!Array.isArray(answer.data) || typeof answer.has_more !== "boolean") throw new SourceRunError("listing events: not a Stripe list");
  const events = answer.data.map(parseEvent);
  ctx.counts.listed += events.length;
  return { events, hasMore: answer.has_more };
}

/** Appends the events the inbox lacks, oldest first (`newestFirst` as Stripe lists them). */
async function appendMissing(ctx: RunContext, newestFirst: ListedEvent[], seen: Set<string>): Promise<void> {
  const dedupe = ctx.inbox.settings.dedupe!;
  for (const { id, event } of [...newestFirst].reverse()) {
    if (seen.has(id)) continue;
    seen.add(id);
    // Stripe sends events pretty-printed with two spaces.
    const request = newRequest(
      ctx,
      "reconciled",
      ["Content-Type", "application/json; charset=utf-8"],
      Buffer.from(JSON.stringify(event, null, 2), "utf8"),
    );
    const key = dedupeKeyOf(dedupe, request);
    if (key !== id) throw new SourceRunError("the inbox's settings.dedupe does not key on the body's /id (use the \"stripe\" preset)");
    if (await ctx.store.findDelivery(ctx.inbox.streamId, key)) continue;
    ctx.counts.missing += 1;
    await appendOnce(ctx, request, key);
  }
}

export async function runStripe(ctx: RunContext): Promise<void> {
  const createdSince = Math.ceil(lookbackStart(ctx) / 1000);
  const cap = ctx.stripeMaxEventsPerRun;
  const previous = ctx.state.stripeCursor ?? {};
  // A cursor older than the lookback is dropped: events before it could have left the dedupe window.
  const cursor: StripeCursor = {
    ...(previous.after && previous.after.created >= createdSince ? { after: previous.after } : {}),
    ...(previous.before && !previous.after ? { before: previous.before } : {}),
  };
  ctx.changes.stripeCursor = { ...cursor };
  const seen = new Set<string>();
  const searchedFromTop = cursor.after === undefined && cursor.before === undefined;
  const searched: ListedEvent[] = [];
  ctx.complete = false;
  while (ctx.counts.listed < cap) {
    const limit = Math.min(PAGE_LIMIT, cap - ctx.counts.listed);
    if (cursor.after) {
      const page = await listPage(ctx, { limit, createdSince, ending_before: cursor.after.id });
      await appendMissing(ctx, page.events, seen);
      const newest = page.events[0];
      if (newest) cursor.after = { id: newest.id, created: newest.created };
      ctx.changes.stripeCursor = { ...cursor };
      if (!page.hasMore || page.events.length === 0) {
        ctx.complete = true;
        return;
      }
      continue;
    }
    const page = await listPage(ctx, { limit, createdSince, starting_after: cursor.before?.id });
    searched.push(...page.events);
    const oldest = page.events.at(-1);
    if (oldest) cursor.before = { id: oldest.id, created: oldest.created };
    if (page.hasMore && page.events.length > 0) {
      ctx.changes.stripeCursor = { ...cursor };
      continue;
    }
    // The oldest event in the lookback: what this run listed goes in, oldest first.
    const newest = searched[0];
    if (!newest) {
      // Nothing older than `before` is left (its events aged out): search again from the newest.
      delete cursor.before;
      ctx.changes.stripeCursor = { ...cursor };
      if (searchedFromTop) {
        ctx.complete = true;
        return;
      }
      continue;
    }
    await appendMissing(ctx, searched, seen);
    ctx.changes.stripeCursor = { after: { id: newest.id, created: newest.created } };
    // Events newer than this run's first page (listed by earlier runs, or new) come from `after` next run.
    ctx.complete = searchedFromTop;
    return;
  }
}
