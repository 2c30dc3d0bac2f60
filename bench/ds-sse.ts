/*
 * A Durable Streams SSE follower for JSON-mode streams, as the `ds` phase's readers
 * use it: `GET <stream>?offset=<o>&live=sse`, parsed line by line. Each `event: data`
 * payload (its `data:` lines joined with "\n") is parsed as a JSON array. The data
 * events are held until the `event: control` that follows them, and only then handed
 * to onMessages, with the time the chunk holding the data arrived; so the messages
 * counted are exactly those up to the last control's streamNextOffset. If the server
 * ends the response (the protocol lets it close SSE connections now and then), the
 * follower reconnects from that offset, and whatever came after the last control is
 * dropped, as a client must.
 */
import { request, type ClientRequest } from "node:http";
import { performance } from "node:perf_hooks";

export interface SseState {
  /** Messages in the JSON arrays of the data events handed over. */
  messages: number;
  dataEvents: number;
  controlEvents: number;
  /** streamNextOffset of the last control event. */
  offset: string;
  upToDate: boolean;
  reconnects: number;
  bytes: number;
}

export interface SseFollower {
  state: SseState;
  /** Resolves at the first control event that says upToDate. */
  ready: Promise<void>;
  /** Resolves when stopped; rejects if reading failed. */
  finished: Promise<void>;
  stop(): void;
}

export interface SseFollowOptions {
  /** The stream's URL, without a query. */
  url: string;
  offset: string;
  /** Called for each data event's JSON array once its control event is in; receivedAt is performance.now() of its chunk. */
  onMessages?(messages: unknown[], receivedAt: number): void;
  /** Called after each control event. */
  onControl?(state: SseState): void;
}

const MAX_RECONNECTS = 100;

export function followSse(options: SseFollowOptions): SseFollower {
  const state: SseState = {
    messages: 0,
    dataEvents: 0,
    controlEvents: 0,
    offset: options.offset,
    upToDate: false,
    reconnects: 0,
    bytes: 0,
  };
  let stopped = false;
  let current: ClientRequest | undefined;
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  let settle: { resolve(): void; reject(error: Error): void } | undefined;
  const finished = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  let done = false;
  const finish = (error?: Error) => {
    if (done) return;
    done = true;
    if (error && !stopped) settle!.reject(error);
    else settle!.resolve();
  };

  const connect = () => {
    // Per connection: the event being parsed and the data events waiting for their control.
    let type = "message";
    let data: string[] = [];
    let pending: Array<[payload: string, receivedAt: number]> = [];
    let partial = "";
    let chunkAt = 0;

    const dispatch = () => {
      if (data.length === 0 && type === "message") return;
      const payload = data.join("\n");
      if (type === "data") {
        pending.push([payload, chunkAt]);
      } else if (type === "control") {
        const control = JSON.parse(payload) as { streamNextOffset?: string; upToDate?: boolean; streamClosed?: boolean };
        for (const [text, receivedAt] of pending) {
          const batch = JSON.parse(text) as unknown;
          if (!Array.isArray(batch)) throw new Error(`an SSE data event is not a JSON array: ${text.slice(0, 100)}`);
          state.messages += batch.length;
          state.dataEvents++;
          options.onMessages?.(batch, receivedAt);
        }
        pending = [];
        if (typeof control.streamNextOffset !== "string") throw new Error(`an SSE control event without streamNextOffset: ${payload}`);
        state.offset = control.streamNextOffset;
        state.upToDate = control.upToDate === true || control.streamClosed === true;
        state.controlEvents++;
        options.onControl?.(state);
        if (state.upToDate) markReady();
      }
      type = "message";
      data = [];
    };

    const line = (text: string) => {
      if (text.endsWith("\r")) text = text.slice(0, -1);
      if (text === "") dispatch();
      else if (text.startsWith("data:")) data.push(text.slice(text.startsWith("data: ") ? 6 : 5));
      else if (text.startsWith("event:")) type = text.slice(6).trim();
      // comments (":…"), id: and retry: lines are ignored
    };

    const url = `${options.url}?offset=${encodeURIComponent(state.offset)}&live=sse`;
    const req = request(url, { headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new Error(`SSE read of ${url} answered ${res.statusCode}`));
        return;
      }
      if (res.headers["stream-sse-data-encoding"] !== undefined) {
        res.destroy();
        finish(
          new Error(`SSE read of ${url}: a JSON stream answered with stream-sse-data-encoding ${res.headers["stream-sse-data-encoding"]}`),
        );
        return;
      }
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (done) return;
        chunkAt = performance.now();
        state.bytes += chunk.length;
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        try {
          for (const text of lines) line(text);
        } catch (error) {
          res.destroy();
          finish(error as Error);
        }
      });
      res.on("error", (error) => finish(error));
      res.on("close", () => {
        if (done || stopped) return;
        if (++state.reconnects > MAX_RECONNECTS) finish(new Error(`the SSE stream ended more than ${MAX_RECONNECTS} times`));
        else connect();
      });
    });
    req.on("error", (error) => finish(error));
    req.end();
    current = req;
  };

  connect();
  return {
    state,
    ready,
    finished,
    stop() {
      stopped = true;
      current?.destroy();
      finish();
    },
  };
}
