/*
 * Poll: GET the admin's URL with the stored headers and append the body as an event
 * (origin "poll") only when its sha256 differs from the last appended one. The hash
 * is kept in the source's state, so a restart does not append an unchanged body again.
 * A producer's full-state endpoint polled this way is the seed of key frames.
 */
import { createHash } from "node:crypto";
import { providerRequest, SourceRunError } from "./provider-http.js";
import { newRequest, USER_AGENT, type RunContext } from "./run-context.js";

export async function runPoll(ctx: RunContext): Promise<void> {
  const config = ctx.source.config;
  if (config.kind !== "poll") throw new Error("not a poll source");
  const limit = ctx.inbox.settings.maxBodyBytes ?? ctx.maxBodyBytes;
  const response = await providerRequest(
    new URL(config.url),
    { headers: { "user-agent": USER_AGENT, ...ctx.source.credentials.headers }, timeoutMs: ctx.source.timeoutMs, maxBytes: limit },
    ctx.budget,
  );
  if (response.status < 200 || response.status >= 300)
    throw new SourceRunError(`GET ${new URL(config.url).pathname}: answered ${response.status}`);
  ctx.counts.listed = 1;
  const hash = createHash("sha256").update(response.body).digest("hex");
  if (hash === ctx.state.lastHash) return;
  ctx.counts.missing = 1;
  const contentType = response.headers.get("content-type");
  const rawHeaders = contentType ? ["Content-Type", contentType] : [];
  const request = newRequest(ctx, "poll", rawHeaders, response.body);
  const result = await ctx.store.appendEvent(ctx.inbox.streamId, request);
  if (result.status === "not_found") throw new SourceRunError("the inbox was deleted");
  ctx.counts.appended = 1;
  ctx.changes.lastHash = hash;
}
