/*
 * Readers racing the retention prune. A large backlog is loaded into an inbox whose
 * retention keeps only a few events, so the prune removes it in batches while readers
 * page from "-1" over catch-up, SSE, WebSocket and the client library's tail(). Whatever a reader gets must be
 * contiguous (each seq the previous + 1) or an explicit "gone" (410, the SSE stream
 * ending, a WebSocket "gone" frame): never a page that silently skips events.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TailhookClient } from "../dist/client/client.js";
import { parseOffset } from "../dist/core/offsets.js";
import type { CapturedRequest } from "../dist/core/types.js";
import { bearer, parseSse, type Envelope } from "./helpers/http.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { capturedRequest } from "./helpers/captured.js";

/** How long readers race the prune; long enough to catch a per-chunk read in nearly every run. */
const RACE_MS = 12_000;
const BACKLOG_EVENTS = 20_000;
const APPENDS_IN_FLIGHT = 2_000;
const CATCH_UP_READERS = 3;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "10", TAILHOOK_SSE_KEEPALIVE_MS: "1000" } });
});
afterAll(() => server.stop());

interface Race {
  inboxId: string;
  streamUrl: string;
  wsUrl: string;
  token: string;
  until: number;
  /** Every hole seen: which reader, after which seq, what came instead. */
  holes: string[];
  pages: number;
  gone: number;
}

function running(race: Race): boolean {
  return Date.now() < race.until && race.holes.length === 0;
}

/** Checks that `seqs` follow `afterSeq` (when known) and each other; records a hole if not. */
function follow(race: Race, reader: string, afterSeq: number | undefined, seqs: number[]): number | undefined {
  let last = afterSeq;
  for (const seq of seqs) {
    if (last !== undefined && seq !== last + 1) race.holes.push(`${reader}: after seq ${last} came ${seq} (${seq - last - 1} skipped)`);
    last = seq;
  }
  return last;
}

/** Pages from -1 until up to date or 410, again and again. */
async function catchUpReader(race: Race, name: string): Promise<void> {
  while (running(race)) {
    let offset = "-1";
    let last: number | undefined;
    for (;;) {
      const response = await fetch(`${race.streamUrl}?offset=${offset}`, { headers: bearer(race.token) });
      if (response.status === 410) {
        await response.body?.cancel();
        race.gone++;
        break;
      }
      expect(response.status).toBe(200);
      const events = (await response.json()) as Envelope[];
      race.pages++;
      last = follow(
        race,
        `${name} page at ${offset}`,
        last,
        events.map((event) => event.seq),
      );
      offset = response.headers.get("stream-next-offset")!;
      if (response.headers.get("stream-up-to-date") === "true" || !running(race)) break;
    }
  }
}

/** One SSE connection from -1 at a time; a stream that ends early is the "gone" signal. */
async function sseReader(race: Race): Promise<void> {
  while (running(race)) {
    const controller = new AbortController();
    const response = await fetch(`${race.streamUrl}?offset=-1&live=sse`, { headers: bearer(race.token), signal: controller.signal });
    expect(response.status).toBe(200);
    const body = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let last: number | undefined;
    let caughtUp = false;
    while (running(race) && !caughtUp) {
      const { value, done } = await body.read();
      if (done) {
        race.gone++;
        break;
      }
      buffered += decoder.decode(value, { stream: true });
      const blocks = buffered.split("\n\n");
      buffered = blocks.pop()!;
      for (const { event, data } of parseSse(blocks.map((block) => `${block}\n\n`).join(""))) {
        if (event === "data") {
          race.pages++;
          last = follow(
            race,
            "SSE",
            last,
            (JSON.parse(data) as Envelope[]).map((envelope) => envelope.seq),
          );
        }
        // Caught up: start again from the earliest retained event.
        if (event === "control" && (JSON.parse(data) as { upToDate?: boolean }).upToDate) caughtUp = true;
      }
    }
    controller.abort();
  }
}

/** One WebSocket from -1 at a time, until up to date or "gone". */
async function webSocketReader(race: Race): Promise<void> {
  while (running(race)) {
    const socket = new WebSocket(`${race.wsUrl}?offset=-1&token=${race.token}`);
    let last: number | undefined;
    await new Promise<void>((resolve) => {
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; event?: Envelope };
        if (frame.type === "event") {
          race.pages++;
          last = follow(race, "WebSocket", last, [frame.event!.seq]);
        }
        if (frame.type === "gone") race.gone++;
        if (frame.type === "up-to-date" || !running(race)) socket.close();
      });
      socket.on("close", () => resolve());
      socket.on("error", () => resolve());
    });
  }
}

/** The client library's tail (long-poll): after each reported loss it goes on exactly after the earliest offset. */
async function clientTailReader(race: Race): Promise<void> {
  const controller = new AbortController();
  const stop = setInterval(() => running(race) || controller.abort(), 50);
  const client = new TailhookClient({ server: server.url, token: race.token });
  let last: number | undefined;
  const onLoss = ({ earliestOffset }: { earliestOffset: string | undefined }) => {
    race.gone++;
    const earliest = parseOffset(earliestOffset);
    last = earliest?.kind === "after" ? earliest.seq : undefined;
  };
  try {
    for await (const { event } of client.tail(race.inboxId, { from: "start", signal: controller.signal, onLoss })) {
      race.pages++;
      last = follow(race, "client tail", last, [event.seq]);
    }
  } finally {
    clearInterval(stop);
  }
}

function captured(n: number): CapturedRequest {
  return capturedRequest(`evt_${n}`, JSON.stringify({ n }));
}

/** Loads backlogs straight through the store (fast: group commit), while the prune eats them. */
async function loadBacklogs(race: Race, streamId: number): Promise<number> {
  let loaded = 0;
  while (running(race)) {
    for (let done = 0; done < BACKLOG_EVENTS && running(race); done += APPENDS_IN_FLIGHT) {
      await Promise.all(Array.from({ length: APPENDS_IN_FLIGHT }, (_, i) => server.store.appendEvent(streamId, captured(loaded + i))));
      loaded += APPENDS_IN_FLIGHT;
    }
  }
  return loaded;
}

describe("reads racing the retention prune", () => {
  it("see contiguous pages or 410, never a page with a hole (catch-up, SSE, WebSocket, client tail)", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 50 } } });
    const streamId = (await server.store.getInbox(inbox.id))!.streamId;
    const race: Race = {
      inboxId: inbox.id,
      streamUrl: inbox.streamUrl,
      wsUrl: `${server.url.replace("http", "ws")}/v1/ws/inbox/${inbox.id}`,
      token: inbox.token,
      until: Date.now() + RACE_MS,
      holes: [],
      pages: 0,
      gone: 0,
    };
    const [loaded] = await Promise.all([
      loadBacklogs(race, streamId),
      ...Array.from({ length: CATCH_UP_READERS }, (_, i) => catchUpReader(race, `catch-up ${i}`)),
      sseReader(race),
      webSocketReader(race),
      clientTailReader(race),
    ]);
    const stream = (await server.store.getStreamById(streamId))!;
    expect(race.holes).toEqual([]);
    // The race really ran: the backlog was loaded and pruned while pages were read.
    expect(loaded).toBeGreaterThanOrEqual(BACKLOG_EVENTS);
    expect(stream.firstSeq).toBeGreaterThan(BACKLOG_EVENTS / 2);
    expect(race.pages).toBeGreaterThan(0);
  });
});
