/*
 * Our own decisions around the protocol (the conformance suite covers the protocol
 * itself): who may use general streams, how they relate to inboxes, size limits, and
 * that streams, producers and closure survive a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitUntil } from "./helpers/wait.js";

describe("access", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ maxBodyBytes: 1024 });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("general streams need the admin token unless the server is --open", async () => {
    const url = `${server.url}/v1/stream/private/a`;
    for (const method of ["PUT", "POST", "GET", "HEAD", "DELETE"]) {
      expect((await fetch(url, { method, body: method === "POST" || method === "PUT" ? "x" : undefined })).status, method).toBe(401);
    }
    expect((await fetch(url, { method: "PUT", headers: { authorization: "Bearer wrong-token-xxxxxxxx" } })).status).toBe(401);
    expect((await server.admin("/v1/stream/private/a", { method: "PUT", body: "x" })).status).toBe(201);
    expect(await (await fetch(`${url}?token=${server.adminToken}`)).text()).toBe("x");
  });

  it("an inbox's token reads its own stream only, and never writes it", async () => {
    const inbox = await server.createInbox();
    const asInbox = { authorization: `Bearer ${inbox.token}` };
    expect((await fetch(inbox.streamUrl, { headers: asInbox })).status).toBe(200);
    expect((await fetch(`${server.url}/v1/stream/private/a`, { headers: asInbox })).status).toBe(401);
    for (const method of ["PUT", "POST", "DELETE"]) {
      const response = await server.admin(`/v1/stream/inbox/${inbox.id}`, { method, body: method === "DELETE" ? undefined : "{}" });
      expect(response.status, method).toBe(405);
    }
  });

  it("refuses appends over the body limit with 413 (the client sees it), storing nothing", async () => {
    expect((await server.admin("/v1/stream/limits/a", { method: "PUT" })).status).toBe(201);
    const big = await server.admin("/v1/stream/limits/a", { method: "POST", body: Buffer.alloc(64 * 1024, 1) });
    expect(big.status).toBe(413);
    const head = await server.admin("/v1/stream/limits/a", { method: "HEAD" });
    expect(head.headers.get("stream-next-offset")).toBe("0000000000000000_0000000000000000");
  });
});

describe("stream tokens", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  async function grant(body: Record<string, unknown>): Promise<{ id: string; token: string; prefix: string; access: string }> {
    const response = await server.admin("/api/stream-tokens", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return (await response.json()) as { id: string; token: string; prefix: string; access: string };
  }

  it("a read token reads the streams under its prefix, and nothing else", async () => {
    for (const name of ["app/chat/room-1", "app/chatx", "app/other"]) {
      expect(
        (await server.admin(`/v1/stream/${name}`, { method: "PUT", headers: { "content-type": "text/plain" }, body: name })).status,
      ).toBe(201);
    }
    const reader = await grant({ prefix: "app/chat" });
    expect(reader).toMatchObject({ prefix: "app/chat", access: "read" });
    expect(reader.token).toMatch(/^ths_/);
    const as = (token: string, init: RequestInit = {}) => ({
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
    });
    const room = `${server.url}/v1/stream/app/chat/room-1`;
    expect(await (await fetch(room, as(reader.token))).text()).toBe("app/chat/room-1");
    expect((await fetch(`${room}?offset=-1&token=${reader.token}`)).status).toBe(200); // EventSource style
    expect((await fetch(room, as(reader.token, { method: "HEAD" }))).status).toBe(200);
    expect((await fetch(room, as(reader.token, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }))).status).toBe(
      401,
    );
    expect((await fetch(`${server.url}/v1/stream/app/chatx`, as(reader.token))).status).toBe(401);
    expect((await fetch(`${server.url}/v1/stream/app/other`, as(reader.token))).status).toBe(401);
    expect((await fetch(`${server.url}/api/stream-tokens`, as(reader.token))).status).toBe(401);
  });

  it("a write token writes under its prefix, cannot fork what it cannot read, and can be revoked", async () => {
    const writer = await grant({ prefix: "jobs", access: "write" });
    const auth = { authorization: `Bearer ${writer.token}`, "content-type": "application/json" };
    expect((await fetch(`${server.url}/v1/stream/jobs/1`, { method: "PUT", headers: auth })).status).toBe(201);
    expect((await fetch(`${server.url}/v1/stream/jobs/1`, { method: "POST", headers: auth, body: '{"step":1}' })).status).toBe(204);
    expect(await (await fetch(`${server.url}/v1/stream/jobs/1`, { headers: auth })).json()).toEqual([{ step: 1 }]);
    const leak = await fetch(`${server.url}/v1/stream/jobs/copy`, {
      method: "PUT",
      headers: { ...auth, "stream-forked-from": "app/other" },
    });
    expect(leak.status).toBe(401);
    expect((await fetch(`${server.url}/v1/stream/jobs/1`, { method: "DELETE", headers: auth })).status).toBe(204);

    const listed = (await (await server.admin("/api/stream-tokens")).json()) as { tokens: Array<Record<string, unknown>> };
    const entry = listed.tokens.find((token) => token.id === writer.id)!;
    expect(entry).toMatchObject({ prefix: "jobs", access: "write", expiresAt: null });
    expect(entry.token).toBeUndefined();
    expect(entry.tokenHash).toBeUndefined();
    expect((await server.admin(`/api/stream-tokens/${writer.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await fetch(`${server.url}/v1/stream/jobs/2`, { method: "PUT", headers: auth })).status).toBe(401);
    expect((await server.admin(`/api/stream-tokens/${writer.id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("expires, refuses bad requests, and never covers inbox streams", async () => {
    const brief = await grant({ prefix: "brief", access: "write", expiresInSeconds: 1 });
    const auth = { authorization: `Bearer ${brief.token}` };
    expect((await fetch(`${server.url}/v1/stream/brief/a`, { method: "PUT", headers: auth })).status).toBe(201);
    await waitUntil(
      async () => (await fetch(`${server.url}/v1/stream/brief/a`, { headers: auth })).status === 401,
      "the 1 s token to expire",
    );
    for (const body of [
      {},
      { prefix: "" },
      { prefix: "a//b" },
      { prefix: "a", access: "admin" },
      { prefix: "a", expiresInSeconds: 0 },
      { prefix: "a", extra: 1 },
      { prefix: "inbox" },
    ]) {
      const response = await server.admin("/api/stream-tokens", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
  });
});

describe("open mode", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ open: true });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("opens general streams only: inboxes keep their tokens and cannot be forked", async () => {
    const inbox = await server.createInbox();
    await fetch(inbox.ingestUrl, { method: "POST", body: "secret" });
    expect((await fetch(`${server.url}/v1/stream/dev/a`, { method: "PUT" })).status).toBe(201);
    expect((await fetch(inbox.streamUrl)).status).toBe(401);
    const fork = await fetch(`${server.url}/v1/stream/dev/leak`, {
      method: "PUT",
      headers: { "stream-forked-from": `/v1/stream/inbox/${inbox.id}` },
    });
    expect(fork.status).toBe(404);
    expect((await fetch(`${server.url}/v1/stream/dev/leak`)).status).toBe(404);
  });

  it("still keeps stream-token management for the admin", async () => {
    const response = await fetch(`${server.url}/api/stream-tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"prefix":"x"}',
    });
    expect(response.status).toBe(401);
  });

  it("reserves __ds for the protocol's control APIs", async () => {
    expect((await fetch(`${server.url}/v1/stream/__ds/mine`, { method: "PUT" })).status).toBe(404);
    expect((await fetch(`${server.url}/v1/stream/__ds`, { method: "PUT" })).status).toBe(404);
    // Only the segment "__ds" is reserved: "__dsx" is an ordinary stream, appends included.
    expect((await fetch(`${server.url}/v1/stream/__dsx`, { method: "PUT", headers: { "content-type": "text/plain" } })).status).toBe(201);
    expect((await fetch(`${server.url}/v1/stream/__dsx`, { method: "POST", body: "a" })).status).toBe(204);
    expect(await (await fetch(`${server.url}/v1/stream/__dsx`)).text()).toBe("a");
  });
});

describe("restart", () => {
  it("keeps streams, their closure, TTL and producer state", async () => {
    const first = await startTestServer({ open: true });
    const url = `${first.url}/v1/stream/keep/a`;
    const producer = (seq: number) => ({
      "producer-id": "p",
      "producer-epoch": "3",
      "producer-seq": String(seq),
      "content-type": "application/json",
    });
    expect((await fetch(url, { method: "PUT", headers: { "content-type": "application/json", "stream-ttl": "3600" } })).status).toBe(201);
    expect((await fetch(url, { method: "POST", headers: producer(0), body: '[{"a":1},{"b":2}]' })).status).toBe(200);
    expect(
      (await fetch(`${first.url}/v1/stream/keep/b`, { method: "PUT", headers: { "stream-closed": "true" }, body: "end" })).status,
    ).toBe(201);
    await first.close();

    const second = await startTestServer({ open: true }, { dataDir: first.dataDir });
    try {
      const again = `${second.url}/v1/stream/keep/a`;
      // The retried batch is recognised; the next one is accepted; an older epoch is fenced.
      expect((await fetch(again, { method: "POST", headers: producer(0), body: '[{"a":1},{"b":2}]' })).status).toBe(204);
      expect((await fetch(again, { method: "POST", headers: producer(1), body: '{"c":3}' })).status).toBe(200);
      const stale = await fetch(again, { method: "POST", headers: { ...producer(0), "producer-epoch": "2" }, body: "{}" });
      expect(stale.status).toBe(403);
      expect(stale.headers.get("producer-epoch")).toBe("3");
      expect(await (await fetch(again)).json()).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
      expect((await fetch(again, { method: "HEAD" })).headers.get("stream-ttl")).toBe("3600");
      const closed = await fetch(`${second.url}/v1/stream/keep/b`);
      expect(closed.headers.get("stream-closed")).toBe("true");
      expect(await closed.text()).toBe("end");
    } finally {
      await second.stop();
    }
  });
});
