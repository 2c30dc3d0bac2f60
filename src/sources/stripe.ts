/*
 * Stripe: list the events created since the last fully listed run (newest first;
 * `created[gte]`, `starting_after`, `has_more`), and append every event id the
 * inbox does not have, oldest first, as the POST Stripe would have sent: the event
 * JSON. Stripe's webhook bodies are the same event objects, and the "stripe" dedupe
 * preset keys on the body's /id, so a later webhook of the same event is a duplicate.
 */
import { dedupeKeyOf } from "../core/dedupe.js";
import { expectJson, providerRequest, providerUrl, SourceRunError } from "./provider-http.js";
import { appendOnce, lookbackStart, newRequest, USER_AGENT, type RunContext } from "./run-context.js";

const PAGE_LIMIT = 100;
const MAX_PAGES = 100;
const EVENT_ID = /^evt_[A-Za-z0-9_]{1,200}$/;

interface ListedEvent {
  id: string;
  created: number;
  event: unknown;
}

function parseEvent(item: unknown): ListedEvent {
  const record = (item ?? {}) as Record<string, unknown>;
  if (typeof record.id !== "string" || !EVENT_ID.test(record.id) || typeof record.created !== "number" || !Number.isSafeInteger(record.created)) {
    throw new SourceRunError("the events list has an entry without a valid id and created");
  }
  return { id: record.id, created: record.created, event: item };
}

async function listEvents(ctx: RunContext, createdSince: number): Promise<ListedEvent[]> {
  const events: ListedEvent[] = [];
  let startingAfter: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const url = providerUrl(ctx.apiUrls.stripe, ["v1", "events"], {
      limit: PAGE_LIMIT,
      "created[gte]": createdSince,
      starting_after: startingAfter,
    });
    const response = await providerRequest(
      url,
      { headers: { authorization: `Bearer ${ctx.source.credentials.secretKey}`, "user-agent": USER_AGENT }, timeoutMs: ctx.source.timeoutMs },
      ctx.budget,
    );
    const answer = expectJson(response, "listing events") as { data?: unknown; has_more?: unknown };
    if (!Array.isArray(answer.data) || typeof answer.has_more !== "boolean") throw new SourceRunError("listing events: not a Stripe list");
    const pageEvents = answer.data.map(parseEvent);
    events.push(...pageEvents);
    if (!answer.has_more || pageEvents.length === 0) return events;
    startingAfter = pageEvents[pageEvents.length - 1]!.id;
  }
  throw new SourceRunError(`more than ${MAX_PAGES * PAGE_LIMIT} events to list; the rest comes next run`);
}

export async function runStripe(ctx: RunContext): Promise<void> {
  const dedupe = ctx.inbox.settings.dedupe!;
  const windowStart = Math.ceil(lookbackStart(ctx) / 1000);
  // gte, not gt: events of the same second as the last one seen are listed again (and found present).
  const createdSince = Math.max(ctx.state.cursorCreated ?? 0, windowStart);
  const listed = await listEvents(ctx, createdSince);
  ctx.counts.listed = listed.length;
  const seen = new Set<string>();
  // The list is newest first: reversed, it is oldest first (the stable sort only guards against overlapping pages).
  const ordered = listed.reverse().sort((a, b) => a.created - b.created);
  for (const { id, event } of ordered) {
    if (seen.has(id)) continue;
    seen.add(id);
    // Stripe sends events pretty-printed with two spaces.
    const request = newRequest(ctx, "reconciled", ["Content-Type", "application/json; charset=utf-8"], Buffer.from(JSON.stringify(event, null, 2), "utf8"));
    const key = dedupeKeyOf(dedupe, request);
    if (key !== id) throw new SourceRunError('the inbox\'s settings.dedupe does not key on the body\'s /id (use the "stripe" preset)');
    if (await ctx.store.findDelivery(ctx.inbox.streamId, key)) continue;
    ctx.counts.missing += 1;
    await appendOnce(ctx, request, key);
  }
  const newest = ordered.reduce((max, { created }) => Math.max(max, created), createdSince);
  ctx.changes.cursorCreated = newest;
}
