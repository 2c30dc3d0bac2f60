/*
 * The typed client for tailhook's HTTP API, used by the CLI and by users:
 * `import { TailhookClient } from "tailhook"`. `tail()` is an async iterator of events
 * that reconnects with backoff and resumes after the last event it yielded, so a
 * dropped connection or a server restart costs neither a gap nor a repeat.
 */
import { inboxStreamName } from "../core/stream-names.js";
import type { EventEnvelope, InboxSettings } from "../core/types.js";
import type { ConsumerView } from "../core/consumers.js";
import type { InboxView } from "../core/inbox-view.js";
import { formatOffset } from "../core/offsets.js";
import { errorFromResponse, goneFromResponse, TailhookGoneError } from "./errors.js";
import { readLoop, type GonePolicy, type LossNotice, type ResetCause } from "./read-loop.js";

export type { GonePolicy, LossNotice, ResetCause } from "./read-loop.js";

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

/** A consumer as the API shows it: the server's own view type (core/consumers.ts). */
export type ConsumerInfo = ConsumerView;

/** A delta: one event after the position the tail stood at. */
export interface TailedEvent {
  kind: "event";
  /** Resume from here to continue after this event. */
  offset: string;
  event: EventEnvelope;
}

/** Forget what was built from earlier items: a key frame as of `offset` follows. */
export interface ResetMarker {
  kind: "reset";
  offset: string;
  cause: ResetCause;
}

/** One entity's latest event as of the key frame's offset (an inbox with settings.keyFrame). */
export interface SnapshotEvent {
  kind: "snapshot";
  event: EventEnvelope;
}

/** The key frame is complete; the deltas after `offset` follow (resume from `offset`). */
export interface SnapshotEndMarker {
  kind: "snapshot-end";
  offset: string;
}

/** What tail() yields: events, and around a key frame a reset, its events and its end. */
export type TailItem = TailedEvent | ResetMarker | SnapshotEvent | SnapshotEndMarker;

/** A delta message of a general or state stream. */
export interface StreamMessage<M = unknown> {
  kind: "message";
  offset: string;
  message: M;
}

/** One message of a stream's key frame (for a state stream: an insert per live key). */
export interface StreamSnapshotMessage<M = unknown> {
  kind: "snapshot";
  message: M;
}

/** What tailStream() yields. */
export type StreamItem<M = unknown> = StreamMessage<M> | ResetMarker | StreamSnapshotMessage<M> | SnapshotEndMarker;

export interface StreamTailOptions {
  /**
   * "start" (default), "now", an offset a previous item carried, or "snapshot": the
   * stream's key frame first (reset, snapshot messages, snapshot-end), then the deltas.
   */
  from?: string;
  /**
   * After a 410 (the position is no longer retained): "snapshot" reads the key frame and
   * goes on after it, "earliest" goes on from the earliest retained message, "throw"
   * throws TailhookGoneError. Default: "earliest" with onLoss, else "throw".
   */
  onGone?: GonePolicy;
  signal?: AbortSignal;
  /** Called before each retry after a failure, with the error and the delay. */
  onRetry?: (error: unknown, delayMs: number) => void;
  /** Called on each 410 that onGone recovers from ("snapshot" or "earliest"). */
  onLoss?: (notice: LossNotice) => void;
}

export interface TailOptions extends StreamTailOptions {
  /**
   * Read as this server-side consumer: without `from`, start after its committed
   * offset. Reading does not commit; call `ack()` once events are processed.
   */
  consumer?: string;
}

/** Options under which tail() can only yield events: no key frame is read. */
export interface EventTailOptions extends TailOptions {
  from?: "start" | "now";
  onGone?: "earliest" | "throw";
}

/** A stream's URL path: each segment of its name encoded. */
function streamPath(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
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
      if (response.status === 410) throw await goneFromResponse(response, offset);
      if (!response.ok) throw await errorFromResponse(response);
      const page = response.status === 204 ? [] : ((await response.json()) as EventEnvelope[]);
      for (const event of page.slice(0, options.limit - events.length)) {
        offset = formatOffset(event.seq);
        events.push({ kind: "event", offset, event });
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

  /**
   * Follows an inbox's events by long-poll, forever or until `signal` aborts. With
   * `from: "snapshot"` or `onGone: "snapshot"` (an inbox with settings.keyFrame) it
   * also yields a key frame: a reset marker, the latest event per entity, a
   * snapshot-end marker, then the events after it, with no gap and no repeat.
   */
  tail(inboxId: string, options?: EventTailOptions): AsyncGenerator<TailedEvent>;
  tail(inboxId: string, options: TailOptions): AsyncGenerator<TailItem>;
  async *tail(inboxId: string, options: TailOptions = {}): AsyncGenerator<TailItem> {
    // Reading as a consumer without `from`: the server starts after its committed offset.
    const from = options.from === undefined && options.consumer !== undefined ? undefined : startOffset(options.from);
    const items = readLoop({
      ...this.loopOptions(options),
      streamUrl: this.streamUrl(inboxId),
      from,
      consumer: options.consumer,
      seqOf: (message) => (message as EventEnvelope).seq,
    });
    for await (const item of items) {
      if (item.kind === "delta") yield { kind: "event", offset: item.offset, event: item.message as EventEnvelope };
      else if (item.kind === "snapshot") yield { kind: "snapshot", event: item.message as EventEnvelope };
      else yield item;
    }
  }

  /**
   * Follows a general or state stream (`/v1/stream/<name>`, JSON content) by long-poll,
   * as tail() follows an inbox; `from: "snapshot"` reads a state stream's key frame first.
   * Ends when the stream is closed and read to its end.
   */
  async *tailStream<M = unknown>(name: string, options: StreamTailOptions = {}): AsyncGenerator<StreamItem<M>> {
    const items = readLoop({
      ...this.loopOptions(options),
      streamUrl: `${this.server}/v1/stream/${streamPath(name)}`,
      from: startOffset(options.from),
    });
    for await (const item of items) {
      if (item.kind === "delta") yield { kind: "message", offset: item.offset, message: item.message as M };
      else if (item.kind === "snapshot") yield { kind: "snapshot", message: item.message as M };
      else yield item;
    }
  }

  private loopOptions(options: StreamTailOptions) {
    return {
      fetch: this.fetch,
      headers: this.authHeaders(),
      onGone: options.onGone ?? (options.onLoss ? "earliest" : "throw"),
      signal: options.signal,
      onRetry: options.onRetry,
      onLoss: options.onLoss,
    } as const;
  }
}

function startOffset(from: string | undefined): string {
  return from === undefined || from === "start" ? "-1" : from;
}
