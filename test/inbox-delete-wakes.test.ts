/*
 * Deleting an inbox ends its live readers at once: a long-poll answers 404, an SSE
 * stream ends, a WebSocket closes with 4404 — long before the long-poll timeout or
 * the keep-alive (both set to a minute here). On PostgreSQL, readers connected to a
 * second server process sharing the database end too (the delete's NOTIFY), and the
 * same holds for deleting a general stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { bearer } from "./helpers/http.js";
import { killAllChildren, startServerProcess, type ServerProcess } from "./helpers/processes.js";
import { backendEnv, startTestServer, testBackend, type TestServer } from "./helpers/server.js";

/** Far above how long a woken reader takes to end, far below the timeouts below. */
const END_DEADLINE_MS = 5_000;
const LONG_MS = 60_000;
const LONG_TIMEOUTS = { TAILHOOK_SSE_KEEPALIVE_MS: String(LONG_MS), TAILHOOK_LONG_POLL_TIMEOUT_MS: String(LONG_MS) };

let server: TestServer;
let other: ServerProcess | undefined;

beforeAll(async () => {
  server = await startTestServer({ longPollTimeout: LONG_MS }, { env: LONG_TIMEOUTS });
  if (testBackend === "postgres") {
    other = await startServerProcess({
      args: ["--long-poll-timeout", String(LONG_MS)],
      env: { ...backendEnv(server.dataDir), ...LONG_TIMEOUTS, TAILHOOK_ADMIN_TOKEN: server.adminToken },
    });
  }
});
afterAll(async () => {
  await killAllChildren();
  await server.stop();
});

/** Rejects after `ms` with `what`, so a reader that never ends fails the test with a reason. */
function deadline<T>(ending: Promise<T>, what: string, ms = END_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([ending, late]).finally(() => clearTimeout(timer));
}

interface OpenReaders {
  /** Resolves with the long-poll's status (-1 when the request failed). */
  longPoll: Promise<number>;
  /** Resolves when the SSE body ends (or "cut" when the connection broke instead). */
  sse: Promise<"ended" | "cut">;
  /** Resolves with the WebSocket close code. */
  webSocket: Promise<number>;
}

/** A long-poll, an SSE and (for inboxes) a WebSocket reader, each waiting at the tail. */
/*
 * The long-poll is sent first; the SSE and WebSocket readers are at the tail only after
 * it, so by then the long-poll waits too (had it not, it would get its 404 at once).
 */
async function openReaders(streamUrl: string, token: string, wsUrl: string | undefined): Promise<OpenReaders & { waiting: Promise<void> }> {
  const longPoll = fetch(`${streamUrl}?offset=-1&live=long-poll`, { headers: bearer(token) }).then(
    async (response) => {
      await response.body?.cancel();
      return response.status;
    },
    () => -1,
  );
  const sseResponse = await fetch(`${streamUrl}?offset=-1&live=sse`, { headers: bearer(token) });
  expect(sseResponse.status).toBe(200);
  const body = sseResponse.body!.getReader();
  let sseText = "";
  let sawControl!: () => void;
  const sseWaiting = new Promise<void>((resolve) => (sawControl = resolve));
  const sse = (async () => {
    const decoder = new TextDecoder();
    for (;;) {
      // A connection cut (not ended) is not an end.
      const { value, done } = await body.read().catch(() => ({ value: undefined, done: undefined }));
      if (done === undefined) return "cut" as const;
      if (done) return "ended" as const;
      sseText += decoder.decode(value, { stream: true });
      if (sseText.includes("event: control")) sawControl();
    }
  })();
  let webSocket: Promise<number> = Promise.resolve(0);
  let wsWaiting: Promise<void> = Promise.resolve();
  if (wsUrl) {
    const socket = new WebSocket(`${wsUrl}?offset=-1&token=${token}`);
    socket.on("error", () => undefined);
    wsWaiting = new Promise((resolve) => socket.on("message", (data) => String(data).includes('"up-to-date"') && resolve()));
    webSocket = new Promise((resolve) => socket.on("close", (code) => resolve(code)));
  }
  return { longPoll, sse, webSocket, waiting: Promise.all([sseWaiting, wsWaiting]).then(() => undefined) };
}

async function createInboxOn(baseUrl: string, id: string) {
  return { streamUrl: `${baseUrl}/v1/stream/inbox/${id}`, wsUrl: `${baseUrl.replace("http", "ws")}/v1/ws/inbox/${id}` };
}

describe("deleting an inbox wakes its readers", () => {
  it("ends long-poll (404), SSE (stream ends) and WebSocket (close 4404) at once", async () => {
    const inbox = await server.createInbox();
    const servers = [server.url, ...(other ? [other.url] : [])];
    const readers = await Promise.all(
      servers.map(async (baseUrl) => {
        const urls = await createInboxOn(baseUrl, inbox.id);
        return openReaders(urls.streamUrl, inbox.token, urls.wsUrl);
      }),
    );
    await deadline(Promise.all(readers.map((reader) => reader.waiting)), "readers reaching the tail");
    const deleted = await server.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    const ends = await Promise.all(
      readers.map(async (reader, index) => {
        const where = index === 0 ? "this server" : "the other server process";
        const settle = <T>(ending: Promise<T>) => deadline(ending, where).catch((error: Error) => error.message);
        const [longPoll, sse, webSocket] = await Promise.all([settle(reader.longPoll), settle(reader.sse), settle(reader.webSocket)]);
        return { where, longPoll, sse, webSocket };
      }),
    );
    expect(ends).toEqual(ends.map(({ where }) => ({ where, longPoll: 404, sse: "ended", webSocket: 4404 })));
  });

  // A stream with a fork is only soft-deleted (the fork still reads its data): its readers end as well, with 410.
  for (const [kind, forked, status] of [
    ["deleted", false, 404],
    ["soft-deleted (forked)", true, 410],
  ] as const) {
    it(`ends the long-poll (${status}) and SSE readers of a ${kind} general stream`, async () => {
      const name = `wake-${forked ? "forked" : "plain"}-${Date.now()}`;
      const created = await server.admin(`/v1/stream/${name}`, { method: "PUT", headers: { "content-type": "text/plain" } });
      expect(created.status).toBe(201);
      if (forked) {
        const fork = await server.admin(`/v1/stream/${name}-fork`, {
          method: "PUT",
          headers: { "stream-forked-from": `/v1/stream/${name}` },
        });
        expect(fork.status).toBe(201);
      }
      const servers = [server.url, ...(other ? [other.url] : [])];
      const readers = await Promise.all(
        servers.map((baseUrl) => openReaders(`${baseUrl}/v1/stream/${name}`, server.adminToken, undefined)),
      );
      await deadline(Promise.all(readers.map((reader) => reader.waiting)), "readers reaching the tail");
      const deleted = await server.admin(`/v1/stream/${name}`, { method: "DELETE" });
      expect(deleted.status).toBe(204);
      for (const reader of readers) {
        expect(await deadline(reader.longPoll, "long-poll")).toBe(status);
        expect(await deadline(reader.sse, "SSE")).toBe("ended");
      }
    });
  }
});
