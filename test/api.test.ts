import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "node:http";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";
import { bearer, readAll } from "./helpers/http.js";
import { openApiChecker, type ApiChecker } from "./helpers/openapi.js";

let server: TestServer;
let inbox: Awaited<ReturnType<TestServer["createInbox"]>>;
let other: Awaited<ReturnType<TestServer["createInbox"]>>;
/** Every management reply below is checked against the server's own /openapi.json. */
let api: ApiChecker;
const documented = async (method: string, response: Promise<Response>) => api.check(method, await response);

beforeAll(async () => {
  server = await startTestServer({ publicUrl: "https://hooks.example.com/" });
  api = await openApiChecker(server.url);
  inbox = await server.createInbox({ name: "api" });
  other = await server.createInbox({ name: "other" });
  await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "hello" });
});
afterAll(() => server.stop());

describe("inbox management", () => {
  it("creates inboxes with public URLs and a token shown once", async () => {
    expect(inbox.ingestUrl).toBe(`https://hooks.example.com/h/${inbox.id}`);
    expect(inbox.streamUrl).toBe(`https://hooks.example.com/v1/stream/inbox/${inbox.id}`);
    expect(inbox.token).toMatch(/^thk_/);
    const fetched = (await (await documented("GET", server.admin(`/api/inboxes/${inbox.id}`))).json()) as Record<string, unknown>;
    expect(fetched).toMatchObject({ id: inbox.id, name: "api", lastSeq: 1 });
    expect(fetched.token).toBeUndefined();
    const list = (await (await documented("GET", server.admin("/api/inboxes"))).json()) as { inboxes: Array<{ id: string }> };
    expect(list.inboxes.map((i) => i.id)).toEqual(expect.arrayContaining([inbox.id, other.id]));
    const created = await documented(
      "POST",
      server.admin("/api/inboxes", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "third" }),
      }),
    );
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      name: "third",
      token: expect.stringMatching(/^thk_/),
      smeeUrl: expect.stringContaining("/smee/"),
    });
  });

  it("changes name and settings with PATCH, validating them", async () => {
    const patch = (body: unknown) =>
      documented(
        "PATCH",
        server.admin(`/api/inboxes/${other.id}`, {
          method: "PATCH",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
    const changed = await patch({ name: "renamed", settings: { maxBodyBytes: 3 } });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toMatchObject({ name: "renamed", settings: { maxBodyBytes: 3 } });
    expect((await fetch(`${server.url}/h/${other.id}`, { method: "POST", body: "1234" })).status).toBe(413);
    expect((await patch({ settings: { maxBodyBytes: null } })).status).toBe(200);
    expect((await fetch(`${server.url}/h/${other.id}`, { method: "POST", body: "1234" })).status).toBe(200);
    const invalid = await patch({ settings: { bogus: 1 } });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { message: string } }).error.message).toMatch(/unknown field settings.bogus/);
  });

  it("deletes an inbox, after which everything about it is 404", async () => {
    const doomed = await server.createInbox();
    expect((await documented("DELETE", server.admin(`/api/inboxes/${doomed.id}`, { method: "DELETE" }))).status).toBe(204);
    expect((await documented("DELETE", server.admin(`/api/inboxes/${doomed.id}`, { method: "DELETE" }))).status).toBe(404);
    expect((await documented("GET", server.admin(`/api/inboxes/${doomed.id}`))).status).toBe(404);
    const read = await fetch(`${server.url}/v1/stream/inbox/${doomed.id}?offset=-1`, { headers: bearer(server.adminToken) });
    expect(read.status).toBe(404);
  });

  it("serves one event's envelope and its exact body with the original content type", async () => {
    const envelope = await documented("GET", server.admin(`/api/inboxes/${inbox.id}/events/1`));
    expect(await envelope.json()).toMatchObject({ seq: 1, method: "POST", body: "hello", bodyEncoding: "utf8" });
    const body = await documented("GET", fetch(`${server.url}/api/inboxes/${inbox.id}/events/1/body`, { headers: bearer(inbox.token) }));
    expect(body.headers.get("content-type")).toBe("text/plain;charset=UTF-8");
    expect(body.headers.get("content-security-policy")).toBe("sandbox");
    expect(await body.text()).toBe("hello");
    expect((await documented("GET", server.admin(`/api/inboxes/${inbox.id}/events/99`))).status).toBe(404);
    expect((await documented("GET", server.admin(`/api/inboxes/${inbox.id}/events/0`))).status).toBe(400);
  });
});

describe("access", () => {
  const wrong = "thk_wrong-token-of-the-right-shape-xxxxxxxxxxxx";

  function readEndpoints(id: string): Array<{ method: string; path: string }> {
    return [
      { method: "GET", path: `/v1/stream/inbox/${id}?offset=-1` },
      { method: "GET", path: `/v1/stream/inbox/${id}?offset=-1&live=long-poll` },
      { method: "GET", path: `/v1/stream/inbox/${id}?offset=-1&live=sse` },
      { method: "HEAD", path: `/v1/stream/inbox/${id}` },
      { method: "GET", path: `/api/inboxes/${id}` },
      { method: "GET", path: `/api/inboxes/${id}/events/1` },
      { method: "GET", path: `/api/inboxes/${id}/events/1/body` },
    ];
  }

  it("every read endpoint refuses a missing token, a wrong token and another inbox's token", async () => {
    for (const { method, path } of readEndpoints(inbox.id)) {
      const refusals = [
        await fetch(`${server.url}${path}`, { method }),
        await fetch(`${server.url}${path}`, { method, headers: bearer(wrong) }),
        await fetch(`${server.url}${path}${path.includes("?") ? "&" : "?"}token=${wrong}`, { method }),
        await fetch(`${server.url}${path}`, { method, headers: bearer(other.token) }),
      ];
      expect(refusals.map((r) => `${method} ${path} ${r.status}`)).toEqual(refusals.map(() => `${method} ${path} 401`));
      const allowed = await fetch(`${server.url}${path}`, { method, headers: bearer(inbox.token) });
      expect(`${method} ${path} ${allowed.status}`).toBe(`${method} ${path} 200`);
      await allowed.body?.cancel();
    }
  });

  it("accepts the inbox token in the query string, for EventSource", async () => {
    const response = await fetch(`${inbox.streamUrl.replace("https://hooks.example.com", server.url)}?offset=-1&token=${inbox.token}`);
    expect(response.status).toBe(200);
  });

  it("does not reveal whether an inbox exists to a caller without the admin token", async () => {
    const missing = await documented("GET", fetch(`${server.url}/api/inboxes/AAAAAAAAAAAAAAAAAAAAAAAA`, { headers: bearer(inbox.token) }));
    expect(missing.status).toBe(401);
  });

  it("admin calls refuse inbox tokens and wrong tokens", async () => {
    const calls = [
      { method: "POST", path: "/api/inboxes", body: "{}" },
      { method: "GET", path: "/api/inboxes" },
      { method: "PATCH", path: `/api/inboxes/${inbox.id}`, body: "{}" },
      { method: "DELETE", path: `/api/inboxes/${inbox.id}` },
    ];
    for (const call of calls) {
      for (const headers of [{}, bearer(inbox.token), bearer(wrong)]) {
        const response = await documented(
          call.method,
          fetch(`${server.url}${call.path}`, {
            method: call.method,
            headers: { ...headers, ...(call.body ? { "content-type": "application/json" } : {}) },
            body: call.body,
          }),
        );
        expect(`${call.method} ${call.path} ${response.status}`).toBe(`${call.method} ${call.path} 401`);
      }
    }
    expect((await server.admin(`/api/inboxes/${inbox.id}`)).status).toBe(200);
  });
});

describe("admin token", () => {
  it("is generated on first start into the data folder with mode 0600, and reused", async () => {
    const dataDir = tempDir();
    const created: string[] = [];
    const first = await startTestServer({}, { dataDir, onAdminTokenCreated: (token) => created.push(token) });
    await first.close();
    const file = join(dataDir, "admin-token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8").trim()).toBe(first.adminToken);
    const second = await startTestServer({}, { dataDir, onAdminTokenCreated: (token) => created.push(token) });
    expect(second.adminToken).toBe(first.adminToken);
    expect(created).toEqual([first.adminToken]);
    await second.stop();
  });

  it("comes from TAILHOOK_ADMIN_TOKEN when set", async () => {
    const fixed = await startTestServer({}, { env: { TAILHOOK_ADMIN_TOKEN: "a-fixed-admin-token-for-tests" } });
    expect((await fetch(`${fixed.url}/api/inboxes`, { headers: bearer("a-fixed-admin-token-for-tests") })).status).toBe(200);
    await fixed.stop();
  });
});

describe("shutdown", () => {
  it("answers and stores an ingest in flight, ends live readers, and refuses new connections", async () => {
    const dataDir = tempDir();
    const draining = await startTestServer({ longPollTimeout: 30_000 }, { dataDir });
    const target = await draining.createInbox();
    const longPoll = fetch(`${target.streamUrl.replace(/^https?:\/\/[^/]+/, draining.url)}?offset=now&live=long-poll`, {
      headers: bearer(target.token),
    });
    // An upload that is half sent when the shutdown starts.
    const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${draining.url}/h/${target.id}`, { method: "POST", headers: { "content-length": "10" } }, (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.write("01234");
      setTimeout(() => req.end("56789"), 200);
    });
    // Time for the server to take both requests in: a half-sent upload has no outside
    // sign of having reached the handler, so this one is a fixed wait.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = draining.close();
    expect((await longPoll).status).toBe(204);
    const answer = await reply;
    expect(answer.status).toBe(200);
    await closed;
    await expect(fetch(`${draining.url}/healthz`)).rejects.toThrow();

    const reopened = await startTestServer({}, { dataDir });
    const { events } = await readAll(`${reopened.url}/v1/stream/inbox/${target.id}`, reopened.adminToken);
    expect(events.map((e) => e.body)).toEqual(["0123456789"]);
    await reopened.stop();
  });
});
