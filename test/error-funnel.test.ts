/*
 * One error funnel: a programming error (a TypeError thrown from a store method) is 500,
 * logged at error level with its cause, never 503 "nothing was stored", on every route:
 * ingest, stream appends, the admin API, the WebSocket upgrade and its close code, the
 * subscription routes. Real server on either store; the TypeError comes from wrapping one
 * method of the real store. That a real store failure is still 503: store-failures.test.ts
 * (SQLite), postgres-write-health.test.ts (PostgreSQL), storage-faults.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ERROR_TABLE } from "../dist/core/errors.js";
import { capturingLogger, logLineOf } from "./helpers/log-lines.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

const INTERNAL = {
  error: { code: "internal_error", message: "internal server error; the server log has the cause under this reply's x-request-id" },
};

/** Makes one method of the real store throw what a bug would throw. */
function breakMethod(target: object, name: string): void {
  const bug = () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'settings')"));
  Object.defineProperty(target, name, { value: bug, configurable: true, writable: true });
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe("a programming error is 500, logged with its cause; never 503 'nothing was stored'", () => {
  it("at ingest: a TypeError from the store's getInbox", async () => {
    const { logger, lines } = capturingLogger();
    server = await startTestServer({}, { logger });
    const inbox = await server.createInbox();
    breakMethod(server.store, "getInbox");
    const response = await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "hello" });
    expect(response.status).toBe(500);
    expect(response.headers.get("retry-after")).toBeNull();
    expect(await response.json()).toEqual(INTERNAL);
    const line = await logLineOf(lines, response);
    expect(line).toMatchObject({
      level: 50,
      status: 500,
      err: { type: "TypeError", message: expect.stringContaining("reading 'settings'") },
    });
  });

  it("at ingest: a TypeError from the store's appendEvent", async () => {
    const { logger, lines } = capturingLogger();
    server = await startTestServer({}, { logger });
    const inbox = await server.createInbox();
    breakMethod(server.store, "appendEvent");
    const response = await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "hello" });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual(INTERNAL);
    expect((await logLineOf(lines, response)).err?.type).toBe("TypeError");
  });

  it("on a stream append, the admin API and a Fastify route", async () => {
    const { logger, lines } = capturingLogger();
    server = await startTestServer({}, { logger });
    const inbox = await server.createInbox();
    expect((await server.admin("/v1/stream/app/a", { method: "PUT", headers: { "content-type": "text/plain" } })).status).toBe(201);
    breakMethod(server.store.general!, "appendStream");
    const append = await server.admin("/v1/stream/app/a", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" });
    expect(append.status).toBe(500);
    expect(await append.json()).toEqual(INTERNAL);
    expect((await logLineOf(lines, append)).err?.type).toBe("TypeError");

    breakMethod(server.store, "getInbox");
    const read = await server.admin(`/api/inboxes/${inbox.id}`);
    expect(read.status).toBe(500);
    expect(await read.json()).toEqual(INTERNAL);
    expect(await logLineOf(lines, read)).toMatchObject({ level: 50, err: { type: "TypeError" } });
  });

  it("on a WebSocket upgrade (an HTTP 500) and mid-stream (close code 1011 from the same table)", async () => {
    const { logger } = capturingLogger();
    server = await startTestServer({}, { logger });
    const inbox = await server.createInbox();
    const wsUrl = `${server.url.replace("http", "ws")}/v1/ws/inbox/${inbox.id}?offset=-1&token=${inbox.token}`;

    const store = server.store as unknown as Record<string, unknown>;
    const getInbox = store.getInbox;
    breakMethod(server.store, "getInbox");
    const refused = await new Promise<number>((resolve) => {
      const socket = new WebSocket(wsUrl);
      socket.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
      socket.on("error", () => undefined);
    });
    expect(refused).toBe(500);
    Object.defineProperty(server.store, "getInbox", { value: getInbox, configurable: true, writable: true });

    const socket = new WebSocket(wsUrl);
    socket.on("error", () => undefined);
    const closed = new Promise<number>((resolve) => socket.on("close", (code) => resolve(code)));
    await new Promise<void>((resolve) => socket.on("message", () => resolve()));
    breakMethod(server.store, "readMessages");
    // A follower at the tail is handed plain appends without a read (live/recent-tails.ts);
    // a settings change makes it read the store again, so the next append's page is read.
    expect(
      (
        await server.admin(`/api/inboxes/${inbox.id}`, {
          method: "PATCH",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name: "renamed" }),
        })
      ).status,
    ).toBe(200);
    expect((await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "wake" })).status).toBe(200);
    expect(await closed).toBe(1011);
  });

  it("on the subscription routes, which answer through the same table", async () => {
    const { logger, lines } = capturingLogger();
    server = await startTestServer({}, { logger });
    expect((await server.admin("/v1/stream/wake/s1", { method: "PUT", headers: { "content-type": "application/json" } })).status).toBe(201);
    breakMethod(server.store.general!, "putRecord");
    const response = await server.admin("/v1/stream/__ds/subscriptions/s1", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "pull-wake", streams: ["app/a"], wake_stream: "wake/s1" }),
    });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual(INTERNAL);
    expect((await logLineOf(lines, response)).err?.type).toBe("TypeError");
  });
});

describe("the table", () => {
  it("gives a refusal the close code 4000 + its status, a server-side failure 1011, shutting down 1001", () => {
    for (const [code, { status, close }] of Object.entries(ERROR_TABLE)) {
      const expected = code === "shutting_down" ? 1001 : status >= 500 ? 1011 : 4000 + status;
      expect({ code, close }).toEqual({ code, close: expected });
    }
    expect(ERROR_TABLE.gone.close).toBe(4410);
    expect(ERROR_TABLE.not_found.close).toBe(4404);
  });
});

describe("one spelling per meaning", () => {
  it("an unknown __ds control route is 404 not_found, as every unknown route", async () => {
    server = await startTestServer();
    const unknown = await server.admin("/v1/stream/__ds/nothing-here");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("not_found");
    const route = await server.admin("/no/such/route");
    expect(((await route.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });
});
