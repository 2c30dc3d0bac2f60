/*
 * What clients may send to the subscription API, checked once and turned into typed
 * values. Everything downstream can then trust paths to be normalized and numbers to
 * be in range. Refusals are values carrying the protocol's error code.
 */
import { createHash } from "node:crypto";
import { refuse, type Outcome, type Refusal } from "./errors.js";
import { normalizeStreamPath, RESERVED_SEGMENT } from "./stream-paths.js";
import { checkWebhookUrl, type WebhookUrlPolicy } from "./webhook-url.js";

export type SubscriptionType = "webhook" | "pull-wake";

export interface SubscriptionConfig {
  type: SubscriptionType;
  pattern: string | null;
  /** Explicit stream paths: normalized, unique, sorted. */
  streams: string[];
  webhookUrl: string | null;
  wakeStream: string | null;
  leaseTtlMs: number;
  description: string | null;
}

export interface StreamAck {
  stream: string;
  offset: string;
}

/** The fencing fields every callback, ack and release carries. */
export interface WakeRequest {
  wakeId: string;
  generation: number;
  acks: StreamAck[];
  done: boolean;
}

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const MIN_LEASE_TTL_MS = 1_000;
export const MAX_LEASE_TTL_MS = 600_000;
const MAX_DESCRIPTION_LENGTH = 1_000;
const MAX_STREAMS_PER_REQUEST = 1_000;
const MAX_OFFSET_LENGTH = 256;

function invalid(message: string): Refusal {
  return refuse("INVALID_REQUEST", message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function parseSubscriptionConfig(body: unknown, policy: WebhookUrlPolicy): Outcome<SubscriptionConfig> {
  if (!isObject(body)) return invalid("the body must be a JSON object");
  const { type } = body;
  if (type !== "webhook" && type !== "pull-wake") return invalid('type must be "webhook" or "pull-wake"');

  let pattern: string | null = null;
  if (body.pattern !== undefined && body.pattern !== null) {
    const normalized = normalizePattern(body.pattern);
    if (normalized === undefined) return invalid("pattern must be a stream path glob such as events/*");
    pattern = normalized;
  }
  const streams = parseStreamList(body.streams ?? [], true);
  if (!streams.ok) return streams;
  if (pattern === null && streams.value.length === 0) return invalid("at least one of pattern or streams is required");

  const leaseTtlMs = body.lease_ttl_ms ?? DEFAULT_LEASE_TTL_MS;
  if (typeof leaseTtlMs !== "number" || !Number.isInteger(leaseTtlMs) || leaseTtlMs < MIN_LEASE_TTL_MS || leaseTtlMs > MAX_LEASE_TTL_MS) {
    return invalid(`lease_ttl_ms must be an integer from ${MIN_LEASE_TTL_MS} to ${MAX_LEASE_TTL_MS}`);
  }
  const description = body.description ?? null;
  if (description !== null && (typeof description !== "string" || description.length > MAX_DESCRIPTION_LENGTH)) {
    return invalid(`description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }

  let webhookUrl: string | null = null;
  let wakeStream: string | null = null;
  if (type === "webhook") {
    if (body.wake_stream !== undefined && body.wake_stream !== null) return invalid("wake_stream is only for pull-wake subscriptions");
    const url = isObject(body.webhook) ? body.webhook.url : undefined;
    if (typeof url !== "string" || url === "") return invalid("webhook subscriptions require webhook.url");
    const check = checkWebhookUrl(url, policy);
    if (!check.ok) return refuse("WEBHOOK_URL_REJECTED", check.message);
    webhookUrl = url;
  } else {
    if (body.webhook !== undefined && body.webhook !== null) return invalid("webhook is only for webhook subscriptions");
    const path = normalizeStreamPath(body.wake_stream);
    if (path === undefined) return invalid("pull-wake subscriptions require wake_stream, a stream path");
    // Its own wake events would wake it again, forever.
    if (streams.value.includes(path)) return invalid("streams must not include the subscription's own wake_stream");
    wakeStream = path;
  }
  return {
    ok: true,
    value: { type, pattern, streams: streams.value, webhookUrl, wakeStream, leaseTtlMs, description: description as string | null },
  };
}

/**
 * The hash that decides "re-confirmed" (200) against "different configuration" (409).
 * Computed over the normalized config, so slashes, duplicate streams and an explicit
 * default lease do not count as differences.
 */
export function configHash(config: SubscriptionConfig): string {
  const canonical = JSON.stringify([
    config.type,
    config.pattern,
    config.streams,
    config.webhookUrl,
    config.wakeStream,
    config.leaseTtlMs,
    config.description,
  ]);
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

function normalizePattern(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const pattern = raw.replace(/^\/+/, "").replace(/\/+$/, "");
  if (pattern === "" || pattern.length > 1024) return undefined;
  const segments = pattern.split("/");
  if (segments[0] === RESERVED_SEGMENT || segments.some((segment) => segment === "")) return undefined;
  return pattern;
}

/** A list of stream paths, normalized, deduplicated and sorted. */
export function parseStreamList(raw: unknown, allowEmpty: boolean): Outcome<string[]> {
  if (!Array.isArray(raw)) return invalid("streams must be an array of stream paths");
  if (!allowEmpty && raw.length === 0) return invalid("streams must not be empty");
  if (raw.length > MAX_STREAMS_PER_REQUEST) return invalid(`at most ${MAX_STREAMS_PER_REQUEST} streams per request`);
  const paths = new Set<string>();
  for (const item of raw) {
    const path = normalizeStreamPath(item);
    if (path === undefined) return invalid(`not a stream path: ${JSON.stringify(item)}`);
    paths.add(path);
  }
  return { ok: true, value: [...paths].sort() };
}

export function parseWakeRequest(body: unknown): Outcome<WakeRequest> {
  if (!isObject(body)) return invalid("the body must be a JSON object");
  const { wake_id: wakeId, generation, done = false } = body;
  if (typeof wakeId !== "string" || wakeId === "") return invalid("wake_id must be a string");
  if (typeof generation !== "number" || !Number.isSafeInteger(generation)) return invalid("generation must be an integer");
  if (typeof done !== "boolean") return invalid("done must be a boolean");
  const rawAcks = body.acks ?? [];
  if (!Array.isArray(rawAcks)) return invalid("acks must be an array");
  const acks: StreamAck[] = [];
  for (const item of rawAcks) {
    if (!isObject(item)) return invalid("each ack must be an object with stream and offset");
    const stream = normalizeStreamPath(item.stream ?? item.path);
    const { offset } = item;
    if (stream === undefined) return invalid("each ack needs a stream path");
    if (typeof offset !== "string" || offset === "" || offset.length > MAX_OFFSET_LENGTH) return invalid("each ack needs an offset");
    acks.push({ stream, offset });
  }
  return { ok: true, value: { wakeId, generation, acks, done } };
}

export function parseWorker(body: unknown): Outcome<string> {
  const worker = isObject(body) ? body.worker : undefined;
  if (typeof worker !== "string" || worker === "" || worker.length > 200) return invalid("worker must be a non-empty string");
  return { ok: true, value: worker };
}
