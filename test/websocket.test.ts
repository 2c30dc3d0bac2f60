import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { readAll, type Envelope } from "./helpers/http.js";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";
import { ingestMany } from "./helpers/inbox.js";
import { waitUntil } from "./helpers/wait.js";
import { FrameRecorder, upgradeRefusal, type UpgradeRefusal } from "./helpers/ws-reader.js";

interface Frame {
  type: string;
  offset?: string;
  event?: Envelope;
  earliestOffset?: string;
}

/** An inbox socket's recorder, with its events and positions. */
class Reader extends FrameRecorder<Frame> {
  get events(): Envelope[] {
    return this.frames.filter((f) => f.type === "event").map((f) => f.event!);
  }

  get seqs(): number[] {
    return this.events.map((e) => e.seq);
  }

  get lastOffset(): string {
    return this.frames.filter((f) => f.offset !== undefined).at(-1)!.offset!;
  }

  upToDateCount(): number {
    return this.of("up-to-date").length;
  }

  protected override seen(): string {
    return `seqs ${this.seqs.join(",")}; closed ${JSON.stringify(this.closed)}`;
  }
}

/** Connects and expects the upgrade to be refused: the HTTP status and JSON body. */
async function refused(url: string, options: WebSocket.ClientOptions = {}): Promise<UpgradeRefusal> {
  const refusal = await upgradeRefusal(url, options);
  expect(refusal.contentType).toBe("application/json");
  return refusal;
}

function wsUrl(server: { url: string }, inboxId: string, query: string): string {
  return `${server.url.replace(/^http/, "ws")}/v1/ws/inbox/${inboxId}?${query}`;
}

const seqOf = (offset: string) => Number(offset.split("_")[1]);
const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;

/** Waits until the prune pass has left only `count` events (a read racing a prune may answer 410). */
async function waitForRetention(inbox: { streamUrl: string; token: string }, count: number): Promise<void> {
  await waitUntil(async () => {
    const response = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: { authorization: `Bearer ${inbox.token}` } });
    return response.status === 200 && ((await response.json()) as unknown[]).length === count;
  }, `retention to leave ${count} events`);
}

function expectContiguous(seqs: number[], from: number, to: number): void {
  expect(seqs).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

let server: TestServer;
const readers: Reader[] = [];

function connect(url: string, options?: WebSocket.ClientOptions): Reader {
  const reader = new Reader(url, options);
  readers.push(reader);
  return reader;
}

beforeAll(async () => {
  server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
});
afterAll(async () => {
  for (const reader of readers) reader.socket.terminate();
  await server.stop();
});

describe("WebSocket reads", () => {
  it("sends events in order with resumable offsets, then up-to-date, then live events", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 5);
    const reader = connect(wsUrl(server, inbox.id, "offset=-1"), { headers: { authorization: `Bearer ${inbox.token}` } });
    await reader.until((r) => r.upToDateCount() === 1, "first up-to-date");
    expect(reader.frames.map((f) => f.type)).toEqual(["event", "event", "event", "event", "event", "up-to-date"]);
    expect(reader.seqs).toEqual([1, 2, 3, 4, 5]);
    expect(reader.frames.map((f) => f.offset)).toEqual([1, 2, 3, 4, 5, 5].map(offset));
    expect(reader.events.map((e) => JSON.parse(e.body).n)).toEqual([0, 1, 2, 3, 4]);
    // The same offsets as the HTTP reads, and the same envelopes.
    const http = await readAll(inbox.streamUrl, inbox.token);
    expect(reader.lastOffset).toBe(http.next);
    expect(reader.events).toEqual(http.events);

    await ingestMany(inbox.ingestUrl, 2);
    await reader.until((r) => r.frames.at(-1)?.type === "up-to-date" && r.lastOffset === offset(7), "up-to-date at 7");
    expect(reader.seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // One up-to-date after each catch-up: the two ingests may land in one wake-up or two.
    expect(reader.upToDateCount()).toBeGreaterThanOrEqual(2);
  });

  it("accepts the admin token and ?token=, and starts at the tail for offset=now", async () => {
    const inbox = await server.createInbox();
    await ingestMany(inbox.ingestUrl, 3);
    const reader = connect(wsUrl(server, inbox.id, `offset=now&token=${server.adminToken}`));
    await reader.until((r) => r.frames.length >= 1, "up-to-date");
    expect(reader.frames).toEqual([{ type: "up-to-date", offset: offset(3) }]);
    await ingestMany(inbox.ingestUrl, 1);
    await reader.until((r) => r.upToDateCount() === 2, "the live event");
    expect(reader.seqs).toEqual([4]);
    expect(reader.frames.map((f) => f.offset)).toEqual([offset(3), offset(4), offset(4)]);
  });

  it("resumes after a client disconnect from the last offset with no gap and no duplicate", async () => {
    const inbox = await server.createInbox();
    const total = 80;
    const writing = Promise.all([ingestMany(inbox.ingestUrl, total / 2), ingestMany(inbox.ingestUrl, total / 2)]);
    const first = connect(wsUrl(server, inbox.id, `offset=-1&token=${inbox.token}`));
    await first.until((r) => r.seqs.length >= 15, "15 events");
    first.socket.terminate();
    await first.until((r) => r.closed !== undefined, "close");
    const resumeFrom = first.lastOffset;
    const second = connect(wsUrl(server, inbox.id, `offset=${resumeFrom}&token=${inbox.token}`));
    await writing;
    await second.until((r) => r.seqs.at(-1) === total, "the last event");
    expect(seqOf(resumeFrom)).toBeLessThan(total);
    expectContiguous([...first.seqs.filter((seq) => seq <= seqOf(resumeFrom)), ...second.seqs], 1, total);
    expect(second.seqs[0]).toBe(seqOf(resumeFrom) + 1);
    for (const frame of second.frames.filter((f) => f.type === "event")) expect(frame.offset).toBe(offset(frame.event!.seq));
  });

  it("refuses before the upgrade with a real HTTP error: 401, 404, 400", async () => {
    const inbox = await server.createInbox();
    const other = await server.createInbox();
    const missing = await refused(wsUrl(server, inbox.id, "offset=-1"));
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe("unauthorized");
    expect((await refused(wsUrl(server, inbox.id, "offset=-1&token=thk_wrong"))).status).toBe(401);
    expect((await refused(wsUrl(server, inbox.id, "offset=-1"), { headers: { authorization: `Bearer ${other.token}` } })).status).toBe(401);
    // An unknown inbox looks like a wrong token to a non-admin, and is a 404 for the admin.
    expect((await refused(wsUrl(server, "A".repeat(24), `token=${inbox.token}`))).status).toBe(401);
    const unknown = await refused(wsUrl(server, "A".repeat(24), `token=${server.adminToken}`));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    const malformed = await refused(wsUrl(server, inbox.id, `offset=12&token=${inbox.token}`));
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe("bad_request");
    expect((await refused(wsUrl(server, inbox.id, `offset=${offset(1)}&token=${inbox.token}`))).status).toBe(400);
    expect((await refused(`${server.url.replace(/^http/, "ws")}/v1/ws/elsewhere?token=${server.adminToken}`)).status).toBe(404);
    const plain = await fetch(wsUrl(server, inbox.id, `token=${inbox.token}`).replace(/^ws/, "http"));
    expect(plain.status).toBe(400);
  });

  it("answers 410 before the upgrade for an offset behind retention", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 3 } } });
    await ingestMany(inbox.ingestUrl, 10);
    await waitForRetention(inbox, 3);
    const gone = await refused(wsUrl(server, inbox.id, `offset=${offset(2)}&token=${inbox.token}`));
    expect(gone.status).toBe(410);
    expect(gone.body.error).toMatchObject({ code: "gone", earliestOffset: offset(7) });
    const reader = connect(wsUrl(server, inbox.id, `offset=-1&token=${inbox.token}`));
    await reader.until((r) => r.upToDateCount() === 1, "up-to-date");
    expect(reader.seqs).toEqual([8, 9, 10]);
  });

  it("stops reading while the client does not, and says gone when retention overtakes it", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 5 } } });
    const reader = connect(wsUrl(server, inbox.id, `offset=-1&token=${inbox.token}`));
    await reader.until((r) => r.upToDateCount() === 1, "up-to-date");
    reader.socket.pause();
    // ~25 MiB: more than the socket buffers hold, so the server must stop and wait.
    const big = (i: number) => `${i}:${"x".repeat(128 * 1024)}`;
    await Promise.all(Array.from({ length: 4 }, () => ingestMany(inbox.ingestUrl, 50, big)));
    await waitForRetention(inbox, 5);
    reader.socket.resume();
    await reader.until((r) => r.closed !== undefined || r.seqs.at(-1) === 200, "the close");
    expect(reader.closed!.code).toBe(4410);
    const last = reader.frames.at(-1)!;
    expect(last.type).toBe("gone");
    const seqs = reader.seqs;
    expect(seqs.length).toBeGreaterThan(0);
    expectContiguous(seqs, 1, seqs.at(-1)!);
    expect(seqs.at(-1)!).toBeLessThan(195);
    expect(last.earliestOffset).toBe(offset(195));
    expect(Number(last.earliestOffset!.split("_")[1])).toBeGreaterThan(seqs.at(-1)!);
  });
});

describe("WebSocket lifetime", () => {
  it("resumes after a server restart on the same data folder", async () => {
    const dataDir = tempDir();
    try {
      const before = await startTestServer({}, { dataDir });
      const inbox = await before.createInbox();
      await ingestMany(inbox.ingestUrl, 3);
      const reader = connect(wsUrl(before, inbox.id, `offset=-1&token=${inbox.token}`));
      await reader.until((r) => r.upToDateCount() === 1, "up-to-date");
      await before.close();
      await reader.until((r) => r.closed !== undefined, "the close");
      expect(reader.closed!.code).toBe(1001);
      expect(reader.lastOffset).toBe(offset(3));

      const after = await startTestServer({}, { dataDir });
      try {
        await ingestMany(`${after.url}/h/${inbox.id}`, 2);
        const resumed = connect(wsUrl(after, inbox.id, `offset=${reader.lastOffset}&token=${inbox.token}`));
        await resumed.until((r) => r.upToDateCount() === 1, "up-to-date after restart");
        await ingestMany(`${after.url}/h/${inbox.id}`, 1);
        await resumed.until((r) => r.upToDateCount() === 2, "the live event after restart");
        expect(resumed.seqs).toEqual([4, 5, 6]);
        expect([...reader.events, ...resumed.events].map((e) => JSON.parse(e.body).n)).toEqual([0, 1, 2, 0, 1, 0]);
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("closes every socket with 1001 on shutdown, without waiting on a client that stopped reading", async () => {
    const own = await startTestServer();
    const inbox = await own.createInbox();
    await ingestMany(inbox.ingestUrl, 30, (i) => `${i}:${"y".repeat(512 * 1024)}`);
    const idle = connect(wsUrl(own, inbox.id, `offset=now&token=${inbox.token}`));
    await idle.until((r) => r.upToDateCount() === 1, "up-to-date");
    const stalled = connect(wsUrl(own, inbox.id, `offset=-1&token=${inbox.token}`));
    stalled.socket.on("open", () => stalled.socket.pause());
    await new Promise<void>((resolve) => stalled.socket.once("open", () => resolve()));
    // Time for the server to fill the paused socket's buffers and block on it: that
    // state has no outside sign, so this one is a fixed wait.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await own.stop();
    await idle.until((r) => r.closed !== undefined, "the close");
    expect(idle.closed).toEqual({ code: 1001, reason: "server shutting down" });
    stalled.socket.resume();
    await stalled.until((r) => r.closed !== undefined, "the stalled close");
    // Stopping did not wait for the stalled reader to take everything it was owed.
    expect(stalled.seqs.length).toBeLessThan(30);
  });

  it("pings an idle socket and drops a client that never answers", async () => {
    const own = await startTestServer({}, { env: { TAILHOOK_SSE_KEEPALIVE_MS: "100" } });
    try {
      const inbox = await own.createInbox();
      const live = connect(wsUrl(own, inbox.id, `offset=now&token=${inbox.token}`));
      const mute = connect(wsUrl(own, inbox.id, `offset=now&token=${inbox.token}`), { autoPong: false });
      await live.until((r) => r.pings >= 3, "three pings");
      await mute.until((r) => r.closed !== undefined, "the mute client being dropped");
      expect(mute.closed!.code).toBe(1006);
      expect(mute.pings).toBeGreaterThanOrEqual(2);
      expect(live.closed).toBeUndefined();
      await ingestMany(inbox.ingestUrl, 1);
      await live.until((r) => r.seqs.length === 1, "an event after pings");
    } finally {
      await own.stop();
    }
  });

  it("closes with 4404 when the inbox is deleted", async () => {
    const own = await startTestServer({}, { env: { TAILHOOK_SSE_KEEPALIVE_MS: "100" } });
    try {
      const inbox = await own.createInbox();
      const reader = connect(wsUrl(own, inbox.id, `offset=-1&token=${inbox.token}`));
      await reader.until((r) => r.upToDateCount() === 1, "up-to-date");
      expect((await own.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" })).status).toBe(204);
      await reader.until((r) => r.closed !== undefined, "the close");
      expect(reader.closed).toEqual({ code: 4404, reason: "inbox deleted" });
    } finally {
      await own.stop();
    }
  });
});
