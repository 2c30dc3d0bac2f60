import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "node:http";
import { SqliteStore } from "../dist/storage/sqlite/sqlite-store.js";
import { StoreWriteError } from "../dist/storage/sqlite/writer.js";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";
import { bearer, bodyBytes, rawRequest, readAll } from "./helpers/http.js";

let server: TestServer;
let inbox: Awaited<ReturnType<TestServer["createInbox"]>>;

beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: 4096 });
  inbox = await server.createInbox({ name: "ingest" });
});
afterAll(() => server.stop());

describe("ingest", () => {
  it("stores binary and non-UTF-8 bodies byte for byte", async () => {
    const before = (await readAll(inbox.streamUrl, inbox.token)).events.length;
    const bodies = [
      Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x00]),
      Buffer.from("caf\xe9", "latin1"),
      Buffer.from("ünïcødé ✓ and \u2028 line separator", "utf8"),
      Buffer.alloc(0),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)),
    ];
    for (const body of bodies) {
      const response = await fetch(inbox.ingestUrl, { method: "POST", body, headers: { "content-type": "application/octet-stream" } });
      expect(response.status).toBe(200);
      const ack = (await response.json()) as { ok: boolean; seq: number };
      expect(ack.ok).toBe(true);
      const stored = await server.admin(`/api/inboxes/${inbox.id}/events/${ack.seq}/body`);
      expect(stored.headers.get("content-type")).toBe("application/octet-stream");
      expect(Buffer.from(await stored.arrayBuffer()).equals(body)).toBe(true);
    }
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.slice(before).map(bodyBytes)).toEqual(bodies);
  });

  it("keeps raw headers: order, case and duplicates", async () => {
    const raw = Buffer.from(
      [
        `POST /h/${inbox.id}/hooks?x=1 HTTP/1.1`,
        "Host: example.test",
        "X-Signature: sha256=abc",
        "x-signature: sha256=def",
        "X-MiXeD-CaSe: Value With  Spaces",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: 5",
        "Connection: close",
        "",
        "hello",
      ].join("\r\n"),
      "latin1",
    );
    const response = await rawRequest(server.url, raw);
    expect(response.status).toBe(200);
    const { seq } = JSON.parse(response.body.toString()) as { seq: number };
    const event = (await (await server.admin(`/api/inboxes/${inbox.id}/events/${seq}`)).json()) as {
      headers: Array<[string, string]>;
      contentType: string;
      path: string;
      query: string;
    };
    expect(event.headers).toEqual([
      ["Host", "example.test"],
      ["X-Signature", "sha256=abc"],
      ["x-signature", "sha256=def"],
      ["X-MiXeD-CaSe", "Value With  Spaces"],
      ["Content-Type", "text/plain; charset=utf-8"],
      ["Content-Length", "5"],
      ["Connection", "close"],
    ]);
    expect(event.contentType).toBe("text/plain; charset=utf-8");
    expect(event).toMatchObject({ path: "/hooks", query: "x=1" });
  });

  it("accepts every method, any sub-path and query string", async () => {
    const cases = [
      { method: "GET", suffix: "", path: "", query: "" },
      { method: "POST", suffix: "/", path: "/", query: "" },
      { method: "PUT", suffix: "/a/b%20c/d.json?x=1&x=2&y", path: "/a/b%20c/d.json", query: "x=1&x=2&y" },
      { method: "PATCH", suffix: "?only=query", path: "", query: "only=query" },
      { method: "DELETE", suffix: "/deep/er/path/", path: "/deep/er/path/", query: "" },
      { method: "OPTIONS", suffix: "/opt", path: "/opt", query: "" },
      { method: "HEAD", suffix: "/head?h=1", path: "/head", query: "h=1" },
      { method: "PROPFIND", suffix: "/dav", path: "/dav", query: "" },
    ];
    for (const entry of cases) {
      const seq = await new Promise<number>((resolve, reject) => {
        const req = request(`${inbox.ingestUrl}${entry.suffix}`, { method: entry.method }, (res) => {
          expect(res.statusCode).toBe(200);
          res.resume();
          res.on("end", () => resolve(-1));
        });
        req.on("error", reject);
        req.end();
      });
      expect(seq).toBe(-1);
    }
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    const captured = events.slice(-cases.length).map(({ method, path, query }) => ({ method, path, query }));
    expect(captured).toEqual(cases.map(({ method, path, query }) => ({ method, path, query })));
  });

  it("answers 404 alike for unknown and deleted inboxes, and stores nothing", async () => {
    const doomed = await server.createInbox();
    expect((await fetch(doomed.ingestUrl, { method: "POST", body: "x" })).status).toBe(200);
    expect((await server.admin(`/api/inboxes/${doomed.id}`, { method: "DELETE" })).status).toBe(204);
    const deleted = await fetch(doomed.ingestUrl, { method: "POST", body: "x" });
    const unknown = await fetch(`${server.url}/h/AAAAAAAAAAAAAAAAAAAAAAAA`, { method: "POST", body: "x" });
    const malformed = await fetch(`${server.url}/h/short`, { method: "POST", body: "x" });
    expect([deleted.status, unknown.status, malformed.status]).toEqual([404, 404, 404]);
    const bodies = [await deleted.text(), await unknown.text(), await malformed.text()];
    expect(new Set(bodies).size).toBe(1);
    expect((await server.admin(`/api/inboxes/${doomed.id}`)).status).toBe(404);
  });

  it("refuses bodies over the server limit and the inbox limit with 413, storing nothing", async () => {
    const before = (await readAll(inbox.streamUrl, inbox.token)).events.length;
    const declared = await fetch(inbox.ingestUrl, { method: "POST", body: Buffer.alloc(4097) });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");

    // Chunked, so the size is only known while reading: refused once it passes the limit.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(inbox.ingestUrl, { method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on("error", reject);
      req.write(Buffer.alloc(3000));
      req.write(Buffer.alloc(3000));
    });
    expect(chunked).toBe(413);

    const small = await server.createInbox({ settings: { maxBodyBytes: 10 } });
    expect((await fetch(small.ingestUrl, { method: "POST", body: "0123456789" })).status).toBe(200);
    expect((await fetch(small.ingestUrl, { method: "POST", body: "0123456789A" })).status).toBe(413);
    expect((await readAll(small.streamUrl, small.token)).events).toHaveLength(1);
    expect((await readAll(inbox.streamUrl, inbox.token)).events.length).toBe(before);
  });

  it("replies as the inbox is configured", async () => {
    const custom = await server.createInbox({
      settings: { response: { status: 202, headers: { "X-Reply": "yes", "Content-Type": "text/plain" }, body: "thanks" } },
    });
    const response = await fetch(custom.ingestUrl, { method: "POST", body: "{}" });
    expect(response.status).toBe(202);
    expect(response.headers.get("x-reply")).toBe("yes");
    expect(await response.text()).toBe("thanks");
    expect((await readAll(custom.streamUrl, custom.token)).events).toHaveLength(1);
  });
});

describe("ingest when the store fails", () => {
  it("answers 503, never 2xx, and stores nothing", async () => {
    const dataDir = tempDir();
    const real = await SqliteStore.open({ dataDir });
    let failing = false;
    const store = Object.create(real) as SqliteStore;
    store.appendEvent = (streamId, request) =>
      // What the writer rejects with when a commit fails on a full disk (a store failure, not a bug: 503).
      failing ? Promise.reject(new StoreWriteError("commit failed: database or disk is full")) : real.appendEvent(streamId, request);
    const broken = await startTestServer({}, { store, dataDir });
    try {
      const target = await broken.createInbox();
      expect((await fetch(target.ingestUrl, { method: "POST", body: "ok" })).status).toBe(200);
      failing = true;
      const refused = await fetch(target.ingestUrl, { method: "POST", body: "lost?" });
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("1");
      failing = false;
      expect((await fetch(target.ingestUrl, { method: "POST", body: "ok again" })).status).toBe(200);
      const { events } = await readAll(target.streamUrl, target.token);
      expect(events.map((event) => [event.seq, event.body])).toEqual([
        [1, "ok"],
        [2, "ok again"],
      ]);
    } finally {
      await broken.stop();
    }
  });

  it("answers 503 once the writer thread is gone", async () => {
    const broken = await startTestServer();
    try {
      const target = await broken.createInbox();
      // Stop the store underneath the running server: a real write path failure.
      await broken.store.close();
      const refused = await fetch(target.ingestUrl, { method: "POST", body: "x" });
      expect(refused.status).toBe(503);
      expect((await fetch(`${broken.url}/healthz`)).status).toBe(503);
    } finally {
      await broken.stop().catch(() => undefined);
    }
  });
});

describe("health", () => {
  it("answers 200 when the server can serve", async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(bearer("x")).toEqual({ authorization: "Bearer x" });
  });
});
