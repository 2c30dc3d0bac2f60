/*
 * The typed client for tailhook's HTTP API, used by the CLI and by users:
 * `import { TailhookClient } from "tailhook"`. `tail()` is an async iterator of events
 * that reconnects with backoff and resumes after the last event it yielded, so a
 * dropped connection or a server restart costs neither a gap nor a repeat.
 */
import { inboxStreamName } from "../core/stream-names.js";
import type { EventEnvelope, InboxSettings } from "../core/types.js";
import { findGap } from "../core/continuity.js";
import type { InboxView } from "../core/inbox-view.js";
import { formatOffset, parseOffset } from "../core/offsets.js";
import { errorFromResponse, TailhookGoneError, TailhookHttpError } from "./errors.js";

export interface ClientOptions {
  server: string;
  token?: string;
  fetch?: typeof fetch;
}

/** An inbox as the API shows it (the server builds the same type: core/inbox-view.ts). */
export type InboxInfo = InboxView;

export interface CreatedInbox extends InboxInfo {
  token: string;
  /** The URL for smee-client's `--url` (it includes the token). */
  smeeUrl: string;
}

export interface ConsumerInfo {
  name: string;
  committedOffset: string;
  committedSeq: number;
  lag: { events: number; lostEvents: number; seconds: number; oldestUnackedAt: string | null; oldestUnackedAgeSeconds: number | null };
  createdAt: string;
  lastAckAt: string | null;
  lastSeenAt: string | null;
}

export interface TailedEvent {
  /** Resume from here to continue after this event. */
  offset: string;
  event: EventEnvelope;
}

export interface LossNotice {
  requestedOffset: string;
  earliestOffset: string | undefined;
}

export interface TailOptions {
  /** "start" (default), "now", or an offset a previous event carried. */
  from?: string;
  /**
   * Read as this server-side consumer: without `from`, start after its committed
   * offset. Reading does not commit; call `ack()` once events are processed.
   */
  consumer?: string;
  signal?: AbortSignal;
  /** Called before each retry after a failure, with the error and the delay. */
  onRetry?: (error: unknown, delayMs: number) => void;
  /**
   * Called when events were lost to retention; tailing then goes on from the earliest
   * retained event. Without it, the iterator throws TailhookGoneError.
   */
  onLoss?: (notice: LossNotice) => void;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

function isRetryable(error: unknown): boolean {
  if (error instanceof TailhookHttpError) return error.status >= 500 || error.status === 429 || error.status === 408;
  return !(error instanceof DOMException && error.name === "AbortError");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export class TailhookClient {
  private readonly server: string;
  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.server = options.server.replace(/\/+$/, "");
    this.token = options.token;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await this.fetch(`${this.server}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw await errorFromResponse(response);
    return (response.status === 204 ? undefined : await response.json()) as T;
  }

  createInbox(input: { name?: string; settings?: InboxSettings } = {}): Promise<CreatedInbox> {
    return this.request("POST", "/api/inboxes", input);
  }

  async listInboxes(): Promise<InboxInfo[]> {
    return (await this.request<{ inboxes: InboxInfo[] }>("GET", "/api/inboxes")).inboxes;
  }

  getInbox(id: string): Promise<InboxInfo> {
    return this.request("GET", `/api/inboxes/${encodeURIComponent(id)}`);
  }

  updateInbox(id: string, changes: { name?: string | null; settings?: Record<string, unknown> }): Promise<InboxInfo> {
    return this.request("PATCH", `/api/inboxes/${encodeURIComponent(id)}`, changes);
  }

  deleteInbox(id: string): Promise<void> {
    return this.request("DELETE", `/api/inboxes/${encodeURIComponent(id)}`);
  }

  getEvent(id: string, seq: number): Promise<EventEnvelope> {
    return this.request("GET", `/api/inboxes/${encodeURIComponent(id)}/events/${seq}`);
  }

  /** The exact bytes the sender sent as the event's body. */
  async getEventBody(id: string, seq: number): Promise<Uint8Array> {
    const response = await this.fetch(`${this.server}/api/inboxes/${encodeURIComponent(id)}/events/${seq}/body`, {
      headers: this.authHeaders(),
    });
    if (response.status === 410) throw new TailhookGoneError(formatOffset(seq - 1), undefined);
    if (!response.ok) throw await errorFromResponse(response);
    return new Uint8Array(await response.arrayBuffer());
  }

  /**
   * Up to `limit` stored events after `offset` ("-1", the default, for the start),
   * without waiting for new ones; `nextOffset` continues after the last one returned.
   */
  async readEvents(inboxId: string, options: { offset?: string; limit: number }): Promise<{ events: TailedEvent[]; nextOffset: string }> {
    const events: TailedEvent[] = [];
    let offset = options.offset ?? "-1";
    while (events.length < options.limit) {
      const response = await this.fetch(`${this.streamUrl(inboxId)}?${new URLSearchParams({ offset })}`, { headers: this.authHeaders() });
      if (response.status === 410) {
        const body = (await response.json().catch(() => ({}))) as { error?: { earliestOffset?: string } };
        throw new TailhookGoneError(offset, body.error?.earliestOffset);
      }
      if (!response.ok) throw await errorFromResponse(response);
      const page = response.status === 204 ? [] : ((await response.json()) as EventEnvelope[]);
      for (const event of page.slice(0, options.limit - events.length)) {
        offset = formatOffset(event.seq);
        events.push({ offset, event });
      }
      if (page.length === 0 || response.headers.get("stream-up-to-date") === "true") break;
    }
    return { events, nextOffset: offset };
  }

  private streamUrl(inboxId: string): string {
    return `${this.server}/v1/stream/${inboxStreamName(encodeURIComponent(inboxId))}`;
  }

  private authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  private consumerPath(inboxId: string, name: string): string {
    return `/api/inboxes/${encodeURIComponent(inboxId)}/consumers/${encodeURIComponent(name)}`;
  }

  /** Creates a consumer at `from` ("start", default, "now" or an offset); an existing one is returned as it is. */
  createConsumer(inboxId: string, name: string, from?: string): Promise<ConsumerInfo> {
    return this.request("PUT", this.consumerPath(inboxId, name), from === undefined ? {} : { from });
  }

  getConsumer(inboxId: string, name: string): Promise<ConsumerInfo> {
    return this.request("GET", this.consumerPath(inboxId, name));
  }

  async listConsumers(inboxId: string): Promise<ConsumerInfo[]> {
    const path = `/api/inboxes/${encodeURIComponent(inboxId)}/consumers`;
    return (await this.request<{ consumers: ConsumerInfo[] }>("GET", path)).consumers;
  }

  /** Commits everything up to and including the event that carried `offset`. Never moves backwards. */
  ack(inboxId: string, name: string, offset: string): Promise<ConsumerInfo> {
    return this.request("POST", `${this.consumerPath(inboxId, name)}/ack`, { offset });
  }

  deleteConsumer(inboxId: string, name: string): Promise<void> {
    return this.request("DELETE", this.consumerPath(inboxId, name));
  }

  /** Follows an inbox's events by long-poll, forever or until `signal` aborts. */
  async *tail(inboxId: string, options: TailOptions = {}): AsyncGenerator<TailedEvent> {
    const streamUrl = `${this.server}/v1/stream/${inboxStreamName(encodeURIComponent(inboxId))}`;
    // Reading as a consumer without `from`: the server starts after its committed offset.
    let offset: string | undefined =
      options.from === undefined && options.consumer !== undefined
        ? undefined
        : options.from === undefined || options.from === "start"
          ? "-1"
          : options.from;
    let cursor: string | undefined;
    let backoff = MIN_BACKOFF_MS;
    while (!options.signal?.aborted) {
      let events: EventEnvelope[];
      try {
        // "now" is pinned to a real offset by a catch-up read first: a long-poll from
        // "now" that is retried after a disconnect would skip what arrived meanwhile.
        const params = new URLSearchParams(offset === "now" ? { offset } : { live: "long-poll" });
        if (offset !== undefined) params.set("offset", offset);
        if (options.consumer !== undefined) params.set("consumer", options.consumer);
        if (cursor) params.set("cursor", cursor);
        const headers: Record<string, string> = {};
        if (this.token) headers.authorization = `Bearer ${this.token}`;
        const response = await this.fetch(`${streamUrl}?${params}`, { headers, signal: options.signal });
        if (response.status === 410) {
          const body = (await response.json().catch(() => ({}))) as { error?: { earliestOffset?: string } };
          throw new TailhookGoneError(offset ?? `consumer ${options.consumer}`, body.error?.earliestOffset);
        }
        if (!response.ok) throw await errorFromResponse(response);
        cursor = response.headers.get("stream-cursor") ?? cursor;
        const next = response.headers.get("stream-next-offset");
        events = response.status === 204 || offset === "now" ? [] : ((await response.json()) as EventEnvelope[]);
        // The server checks its pages; a page with a hole anyway is a loss, never skipped over.
        const after = parseOffset(offset);
        const gap = findGap(
          events.map((event) => event.seq),
          after?.kind === "after" ? after.seq : undefined,
        );
        if (gap) throw new TailhookGoneError(offset ?? `consumer ${options.consumer}`, formatOffset(gap.found - 1));
        if (events.length === 0 && next) offset = next;
        backoff = MIN_BACKOFF_MS;
      } catch (error) {
        if (options.signal?.aborted) return;
        if (error instanceof TailhookGoneError && options.onLoss) {
          options.onLoss({ requestedOffset: error.requestedOffset, earliestOffset: error.earliestOffset });
          // Go on from the earliest retained event (a consumer's own cursor stays where it was until acked).
          offset = error.earliestOffset ?? "-1";
          continue;
        }
        if (!isRetryable(error)) throw error;
        const delay = Math.round(backoff * (0.5 + Math.random()));
        options.onRetry?.(error, delay);
        await sleep(delay, options.signal);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      for (const event of events) {
        // Our offsets mean "after seq n", so each event carries its own resume point.
        offset = formatOffset(event.seq);
        yield { offset, event };
      }
    }
  }
}
