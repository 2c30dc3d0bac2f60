import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { bearer, parseSse, readAll, type Envelope } from "./helpers/http.js";
import { ingestMany, numbered } from "./helpers/inbox.js";
import { waitForReaders } from "./helpers/readers.js";
import { waitUntil } from "./helpers/wait.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ longPollTimeout: 400 }, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50", TAILHOOK_SSE_KEEPALIVE_MS: "100" } });
});
afterAll(() => server.stop());

/** Reads an SSE response until `enough` says stop, then aborts it. */
async function readSse(
  url: string,
  enough: (events: Array<{ event: string; data: string }>) => boolean,
): Promise<Array<{ event: string; data: string }>> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/event-stream");
  const decoder = new TextDecoder();
  let text = "";
  const reader = response.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const complete = text.slice(0, text.lastIndexOf("\n\n") + 2);
    if (enough(parseSse(complete))) {
      controller.abort();
      return parseSse(complete);
    }
  }
  return parseSse(text);
}

function sseEvents(events: Array<{ event: string; data: string }>): Envelope[] {
  return events.filter((e) => e.event === "data").flatMap((e) => JSON.parse(e.data) as Envelope[]);
}

function lastControl(events: Array<{ event: string; data: string }>): { streamNextOffset: string; upToDate?: boolean } {
  const controls = events.filter((e) => e.event === "control");
  return JSON.parse(controls.at(-1)!.data);
}

describe("catch-up reads", () => {
  it("resume from an offset with no gap and no duplicate", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 5, numbered("a"));
    const first = await readAll(inbox.streamUrl, inbox.token);
    expect(first.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    await ingestMany(inbox.ingestUrl, 3, numbered("b"));
    const second = await readAll(inbox.streamUrl, inbox.token, first.next);
    expect(second.events.map((e) => e.seq)).toEqual([6, 7, 8]);
    expect(second.events.map((e) => JSON.parse(e.body).n)).toEqual(["b0", "b1", "b2"]);
    const empty = await fetch(`${inbox.streamUrl}?offset=${second.next}`, { headers: bearer(inbox.token) });
    expect(await empty.json()).toEqual([]);
    expect(empty.headers.get("stream-next-offset")).toBe(second.next);
    expect(empty.headers.get("stream-up-to-date")).toBe("true");
  });

  it("pages a long stream and marks only the last page up to date", async () => {
    const inbox = await server.createInbox();
    await Promise.all(Array.from({ length: 12 }, () => ingestMany(inbox.ingestUrl, 100, numbered("m"))));
    const page = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: bearer(inbox.token) });
    const events = (await page.json()) as Envelope[];
    expect(events).toHaveLength(1000);
    expect(page.headers.get("stream-up-to-date")).toBeNull();
    const rest = await readAll(inbox.streamUrl, inbox.token, page.headers.get("stream-next-offset")!);
    expect(rest.events.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => 1001 + i));
  });

  it("answers offset=now with an empty array at the tail", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 2, numbered("m"));
    const response = await fetch(`${inbox.streamUrl}?offset=now`, { headers: bearer(inbox.token) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([]);
    expect(response.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000002");
    expect(response.headers.get("stream-up-to-date")).toBe("true");
    expect(response.headers.get("cache-control")).toBe("no-store");
  });

  it("refuses malformed offsets and offsets beyond the tail with 400", async () => {
    const inbox = await server.createInbox();
    for (const offset of ["abc", "12", "0000000000000000_0000000000000009"]) {
      const response = await fetch(`${inbox.streamUrl}?offset=${offset}`, { headers: bearer(inbox.token) });
      expect(response.status).toBe(400);
    }
  });

  it("supports ETag revalidation with 304", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 1, numbered("m"));
    const first = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: bearer(inbox.token) });
    const etag = first.headers.get("etag")!;
    const again = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: { ...bearer(inbox.token), "if-none-match": etag } });
    expect(again.status).toBe(304);
    await ingestMany(inbox.ingestUrl, 1, numbered("m"));
    const changed = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: { ...bearer(inbox.token), "if-none-match": etag } });
    expect(changed.status).toBe(200);
  });

  it("answers 410 for offsets before retained data, and reads from -1 start at the earliest retained event", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 3 } } });
    await ingestMany(inbox.ingestUrl, 10, numbered("m"));
    let events: Envelope[] = [];
    await waitUntil(
      async () => (events = (await readAll(inbox.streamUrl, inbox.token)).events).length === 3,
      "retention to leave 3 events",
    );
    expect(events.map((e) => e.seq)).toEqual([8, 9, 10]);
    const gone = await fetch(`${inbox.streamUrl}?offset=0000000000000000_0000000000000002`, { headers: bearer(inbox.token) });
    expect(gone.status).toBe(410);
    const body = (await gone.json()) as { error: { earliestOffset: string } };
    expect(body.error.earliestOffset).toBe("0000000000000000_0000000000000007");
    expect((await fetch(`${inbox.streamUrl}?offset=0000000000000000_0000000000000007`, { headers: bearer(inbox.token) })).status).toBe(200);
    expect((await server.admin(`/api/inboxes/${inbox.id}/events/2`)).status).toBe(410);
    const longPoll = await fetch(`${inbox.streamUrl}?offset=0000000000000000_0000000000000001&live=long-poll`, {
      headers: bearer(inbox.token),
    });
    expect(longPoll.status).toBe(410);
    const sse = await fetch(`${inbox.streamUrl}?offset=0000000000000000_0000000000000001&live=sse&token=${inbox.token}`);
    expect(sse.status).toBe(410);
  });
});

describe("long-poll", () => {
  it("is woken by an ingest", async () => {
    const inbox = await server.createInbox();
    const pending = fetch(`${inbox.streamUrl}?offset=now&live=long-poll`, { headers: bearer(inbox.token) });
    // The server has the long-poll, and "now" is fixed by then (the stream is looked up first).
    await waitForReaders(server, "long-poll");
    await ingestMany(inbox.ingestUrl, 1, numbered("wake"));
    const response = await pending;
    expect(response.status).toBe(200);
    const events = (await response.json()) as Envelope[];
    expect(events.map((e) => JSON.parse(e.body).n)).toEqual(["wake0"]);
    // A timed-out long-poll answers 204 without reading again, so a 200 means the commit woke it.
    expect(response.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000001");
    expect(response.headers.get("stream-cursor")).toMatch(/^\d+$/);
  });

  it("answers 204 with the tail offset when nothing arrives", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 2, numbered("m"));
    const response = await fetch(`${inbox.streamUrl}?offset=0000000000000000_0000000000000002&live=long-poll`, {
      headers: bearer(inbox.token),
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000002");
    expect(response.headers.get("stream-up-to-date")).toBe("true");
    expect(response.headers.get("stream-cursor")).toMatch(/^\d+$/);
  });

  it("resumes from each next offset with no gap and no duplicate while events arrive", async () => {
    const inbox = await server.createInbox();
    const producer = (async () => {
      for (let i = 0; i < 30; i++) {
        await ingestMany(inbox.ingestUrl, 1, numbered(`p${i}-`));
        // The producer's pace (a pause now and then, so reads also catch up live): time is the input.
        if (i % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const seen: number[] = [];
    let offset = "-1";
    while (seen.length < 30) {
      const response = await fetch(`${inbox.streamUrl}?offset=${offset}&live=long-poll`, { headers: bearer(inbox.token) });
      if (response.status === 200) seen.push(...((await response.json()) as Envelope[]).map((e) => e.seq));
      offset = response.headers.get("stream-next-offset")!;
    }
    await producer;
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});

describe("SSE", () => {
  it("streams events with control offsets, and resumes after a disconnect with no gap and no duplicate", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 4, numbered("a"));
    const url = (offset: string) => `${inbox.streamUrl}?offset=${offset}&live=sse&token=${inbox.token}`;
    const first = await readSse(url("-1"), (events) => sseEvents(events).length >= 4 && events.at(-1)?.event === "control");
    expect(sseEvents(first).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    const resumeAt = lastControl(first);
    expect(resumeAt).toMatchObject({ streamNextOffset: "0000000000000000_0000000000000004", upToDate: true });

    await ingestMany(inbox.ingestUrl, 3, numbered("b"));
    let caughtUp = false;
    const live = readSse(url(resumeAt.streamNextOffset), (events) => {
      caughtUp ||= sseEvents(events).length >= 3;
      return sseEvents(events).length >= 5;
    });
    // The reader has the three "b" events: the two "c" events reach it live.
    await waitUntil(() => caughtUp, "the SSE reader to catch up on the b events");
    await ingestMany(inbox.ingestUrl, 2, numbered("c"));
    const second = sseEvents(await live);
    expect(second.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9]);
    expect(second.map((e) => JSON.parse(e.body).n)).toEqual(["b0", "b1", "b2", "c0", "c1"]);
  });

  it("starts at the tail for offset=now and sends keep-alives while idle", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 3, numbered("m"));
    const controller = new AbortController();
    const response = await fetch(`${inbox.streamUrl}?offset=now&live=sse&token=${inbox.token}`, { signal: controller.signal });
    const reader = response.body!.getReader();
    let text = "";
    while (!text.includes(": keep-alive")) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const events = parseSse(text);
    expect(events[0]).toEqual({ event: "control", data: expect.any(String) });
    expect(JSON.parse(events[0]!.data)).toMatchObject({ streamNextOffset: "0000000000000000_0000000000000003", upToDate: true });
    expect(sseEvents(events)).toEqual([]);
  });
});

describe("HEAD", () => {
  it("reports the tail offset and content type without a body", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 2, numbered("m"));
    const response = await fetch(inbox.streamUrl, { method: "HEAD", headers: bearer(inbox.token) });
    expect(response.status).toBe(200);
    expect(response.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000002");
    expect(response.headers.get("content-type")).toBe("application/json");
  });
});
