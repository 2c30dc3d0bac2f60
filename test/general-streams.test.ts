/*
 * Our own decisions around the protocol (the conformance suite covers the protocol
 * itself): who may use general streams, how they relate to inboxes, size limits, and
 * that streams, producers and closure survive a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";

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
    const producer = (seq: number) => ({ "producer-id": "p", "producer-epoch": "3", "producer-seq": String(seq), "content-type": "application/json" });
    expect((await fetch(url, { method: "PUT", headers: { "content-type": "application/json", "stream-ttl": "3600" } })).status).toBe(201);
    expect((await fetch(url, { method: "POST", headers: producer(0), body: '[{"a":1},{"b":2}]' })).status).toBe(200);
    expect((await fetch(`${first.url}/v1/stream/keep/b`, { method: "PUT", headers: { "stream-closed": "true" }, body: "end" })).status).toBe(201);
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
