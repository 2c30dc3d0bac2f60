/*
 * GitHub: list the hook's deliveries (newest first, cursor pagination through the
 * Link header), and for every delivery GUID the inbox does not have, either fetch
 * the delivery and append the request GitHub recorded (mode "append", the default)
 * or ask GitHub to send it again (mode "redeliver": the original bytes come through
 * the webhook path, so X-Hub-Signature-256 verifies). See docs/trust.md.
 */
import { dedupeKeyOf } from "../core/dedupe.js";
import type { CapturedRequest } from "../core/types.js";
import { appJwt } from "./github-app-jwt.js";
import { expectJson, providerRequest, providerUrl, SourceRunError } from "./provider-http.js";
import { appendOnce, lookbackStart, newRequest, USER_AGENT, type RunContext } from "./run-context.js";
import type { GithubHook } from "./types.js";

const PER_PAGE = 100;
const MAX_PAGES = 50;
/** A redelivery asked for and not seen is asked for again after this long. */
const REDELIVER_AGAIN_MS = 60 * 60_000;
const GUID = /^[A-Za-z0-9-]{1,100}$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

interface ListedDelivery {
  id: number;
  guid: string;
  deliveredAt: number;
}

function hookSegments(hook: GithubHook): Array<string | number> {
  switch (hook.type) {
    case "repository":
      return ["repos", hook.owner, hook.repo, "hooks", hook.hookId, "deliveries"];
    case "organization":
      return ["orgs", hook.org, "hooks", hook.hookId, "deliveries"];
    case "app":
      return ["app", "hook", "deliveries"];
  }
}

/** An app hook's requests each get a freshly signed JWT; other hooks use the stored token. */
function bearer(ctx: RunContext): string {
  const { hook } = ctx.source.config as { hook: GithubHook };
  const { privateKey, token } = ctx.source.credentials;
  if (hook.type === "app") {
    if (!privateKey) throw new SourceRunError("this app hook source has no privateKey; create it again with appId and privateKey");
    return appJwt(hook.appId, privateKey);
  }
  return token ?? "";
}

function headers(ctx: RunContext): Record<string, string> {
  return {
    accept: "application/vnd.github+json",
    authorization: `Bearer ${bearer(ctx)}`,
    "x-github-api-version": "2022-11-28",
    "user-agent": USER_AGENT,
  };
}

/** The `cursor` of the Link header's rel="next" (only the value: the URL itself is never followed). */
export function nextCursor(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part);
    if (!match) continue;
    try {
      const cursor = new URL(match[1]!).searchParams.get("cursor");
      return cursor && cursor.length <= 500 ? cursor : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function parseListed(item: unknown): ListedDelivery {
  const record = (item ?? {}) as Record<string, unknown>;
  const { id, guid } = record;
  const deliveredAt = typeof record.delivered_at === "string" ? Date.parse(record.delivered_at) : NaN;
  if (
    typeof id !== "number" ||
    !Number.isSafeInteger(id) ||
    id < 1 ||
    typeof guid !== "string" ||
    !GUID.test(guid) ||
    Number.isNaN(deliveredAt)
  ) {
    throw new SourceRunError("the deliveries list has an entry without a valid id, guid and delivered_at");
  }
  return { id, guid, deliveredAt };
}

/** One entry per GUID (its first attempt: redeliveries repeat the GUID), oldest first, within the window. */
async function listDeliveries(ctx: RunContext, since: number): Promise<ListedDelivery[]> {
  const hook = (ctx.source.config as { hook: GithubHook }).hook;
  const byGuid = new Map<string, ListedDelivery>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const url = providerUrl(ctx.apiUrls.github, hookSegments(hook), { per_page: PER_PAGE, cursor });
    const response = await providerRequest(url, { headers: headers(ctx), timeoutMs: ctx.source.timeoutMs }, ctx.budget);
    const list = expectJson(response, "listing deliveries");
    if (!Array.isArray(list)) throw new SourceRunError("listing deliveries: the answer is not a list");
    let reachedOlder = false;
    for (const item of list) {
      const delivery = parseListed(item);
      if (delivery.deliveredAt < since) {
        reachedOlder = true;
        continue;
      }
      // Newest first: a later entry with the same GUID is an earlier attempt.
      byGuid.delete(delivery.guid);
      byGuid.set(delivery.guid, delivery);
    }
    cursor = nextCursor(response.headers.get("link"));
    if (reachedOlder || cursor === undefined) break;
  }
  return [...byGuid.values()].reverse();
}

function recordedRequest(ctx: RunContext, guid: string, answer: unknown): CapturedRequest {
  const recorded = ((answer ?? {}) as { request?: { headers?: unknown; payload?: unknown } }).request;
  if (!recorded || typeof recorded.headers !== "object" || recorded.headers === null) {
    throw new SourceRunError(`delivery ${guid}: the answer has no request headers`);
  }
  const rawHeaders: string[] = [];
  let contentType = "";
  let hasDeliveryHeader = false;
  for (const [name, value] of Object.entries(recorded.headers)) {
    const text = typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
    // Only what Node could have received: a header that could not be sent is dropped.
    if (text === undefined || !HEADER_NAME.test(name) || /[\r\n\0]/.test(text)) continue;
    rawHeaders.push(name, text);
    if (name.toLowerCase() === "content-type") contentType = text.toLowerCase();
    if (name.toLowerCase() === "x-github-delivery") hasDeliveryHeader = true;
  }
  if (!hasDeliveryHeader) rawHeaders.push("X-GitHub-Delivery", guid);
  // GitHub keeps the payload parsed: these bytes are a re-serialisation, not the original.
  const json = recorded.payload === undefined || recorded.payload === null ? "" : JSON.stringify(recorded.payload);
  const body = contentType.startsWith("application/x-www-form-urlencoded") ? `payload=${encodeURIComponent(json)}` : json;
  return newRequest(ctx, "reconciled", rawHeaders, Buffer.from(body, "utf8"));
}

export async function runGithub(ctx: RunContext): Promise<void> {
  const config = ctx.source.config;
  if (config.kind !== "github") throw new Error("not a github source");
  const dedupe = ctx.inbox.settings.dedupe;
  const since = lookbackStart(ctx);
  const deliveries = await listDeliveries(ctx, since);
  ctx.counts.listed = deliveries.length;
  const redeliveries = Object.fromEntries(Object.entries(ctx.state.redeliveries ?? {}).filter(([, at]) => at >= since));
  if (config.mode === "redeliver") ctx.changes.redeliveries = redeliveries;
  const base = hookSegments(config.hook);
  for (const delivery of deliveries) {
    const key = dedupeKeyOf(dedupe!, newRequest(ctx, "reconciled", ["X-GitHub-Delivery", delivery.guid], Buffer.alloc(0)));
    if (key === undefined)
      throw new SourceRunError('the inbox\'s settings.dedupe does not key on X-GitHub-Delivery (use the "github" preset)');
    if (await ctx.store.findDelivery(ctx.inbox.streamId, key)) continue;
    ctx.counts.missing += 1;
    if (config.mode === "redeliver") {
      const askedAt = redeliveries[delivery.guid];
      if (askedAt !== undefined && ctx.now - askedAt < REDELIVER_AGAIN_MS) continue;
      const url = providerUrl(ctx.apiUrls.github, [...base, delivery.id, "attempts"]);
      const answer = await providerRequest(url, { method: "POST", headers: headers(ctx), timeoutMs: ctx.source.timeoutMs }, ctx.budget);
      if (answer.status < 200 || answer.status >= 300) throw new SourceRunError(`redelivering ${delivery.guid}: answered ${answer.status}`);
      redeliveries[delivery.guid] = ctx.now;
      ctx.counts.appended += 1;
      continue;
    }
    const url = providerUrl(ctx.apiUrls.github, [...base, delivery.id]);
    const response = await providerRequest(url, { headers: headers(ctx), timeoutMs: ctx.source.timeoutMs }, ctx.budget);
    await appendOnce(ctx, recordedRequest(ctx, delivery.guid, expectJson(response, `fetching delivery ${delivery.id}`)), key);
  }
}
