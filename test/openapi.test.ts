/*
 * The JSON API's schemas, seen from outside: /openapi.json is public and a valid
 * OpenAPI 3.1 document of the management API (and nothing else); a request the
 * schemas refuse gets the one documented error shape; replies carry every field the
 * server has (a reply schema that forgot one would silently drop it); and the routes
 * not covered by the other API tests answer as the document says.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileErrors, validate } from "@readme/openapi-parser";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { fetchOpenApi, openApiChecker, type ApiChecker } from "./helpers/openapi.js";

let server: TestServer;
let api: ApiChecker;

beforeAll(async () => {
  server = await startTestServer();
  api = await openApiChecker(server.url);
});
afterAll(() => server.stop());

const json = (method: string, body: unknown) => ({ method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const documented = async (method: string, response: Promise<Response>) => api.check(method, await response);

describe("/openapi.json", () => {
  it("is served without a token and is a valid OpenAPI 3.1 document", async () => {
    const response = await fetch(`${server.url}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as Parameters<typeof validate>[0] & { openapi: string };
    expect(document.openapi).toBe("3.1.0");
    const result = await validate(document);
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
  });

  it("documents the JSON management API and the probes, not ingest or the stream protocol", async () => {
    const { paths } = await fetchOpenApi(server.url);
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining([
        "/api/inboxes",
        "/api/inboxes/{id}",
        "/api/inboxes/{id}/events/{seq}",
        "/api/inboxes/{id}/events/{seq}/body",
        "/api/inboxes/{id}/events/{seq}/email",
        "/api/inboxes/{id}/verification",
        "/api/inboxes/{id}/consumers",
        "/api/inboxes/{id}/consumers/{name}",
        "/api/inboxes/{id}/consumers/{name}/ack",
        "/api/inboxes/{id}/sources",
        "/api/inboxes/{id}/sources/{sourceId}",
        "/api/inboxes/{id}/sources/{sourceId}/run",
        "/api/stream-tokens",
        "/api/stream-tokens/{id}",
        "/healthz",
        "/readyz",
      ]),
    );
    expect(Object.keys(paths).filter((path) => !path.startsWith("/api/") && path !== "/healthz" && path !== "/readyz")).toEqual([]);
    expect(Object.keys(paths["/api/inboxes"]!).sort()).toEqual(["get", "post"]);
    expect(Object.keys(paths["/api/inboxes/{id}"]!).sort()).toEqual(["delete", "get", "patch"]);
  });
});

describe("requests the schemas refuse", () => {
  const refusals: Array<[string, string, RequestInit, RegExp]> = [
    ["not an object", "/api/inboxes", json("POST", [1]), /^the body must be a JSON object$/],
    [
      "a string for a number",
      "/api/inboxes",
      json("POST", { settings: { maxBodyBytes: "5" } }),
      /^settings\.maxBodyBytes must be an integer from 1 to 268435456$/,
    ],
    [
      "out of range",
      "/api/inboxes",
      json("POST", { settings: { maxBodyBytes: 0 } }),
      /^settings\.maxBodyBytes must be an integer from 1 to/,
    ],
    [
      "an unknown key deep down",
      "/api/inboxes",
      json("POST", { settings: { retention: { maxEvent: 1 } } }),
      /^unknown field settings\.retention\.maxEvent$/,
    ],
    [
      "a wrong enum",
      "/api/inboxes",
      json("POST", { settings: { verify: { scheme: "md5", secrets: ["x"] } } }),
      /^settings\.verify\.scheme must be one of/,
    ],
    [
      "a name that is not a string",
      "/api/inboxes",
      json("POST", { name: 5 }),
      /^name must be a string of at most 200 printable characters$/,
    ],
    ["a missing required field", "/api/stream-tokens", json("POST", { access: "read" }), /^prefix is required$/],
  ];
  for (const [what, path, init, message] of refusals) {
    it(`answers 400 in the one error shape: ${what}`, async () => {
      const response = await documented(init.method!, server.admin(path, init));
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect({ status: response.status, code: body.error.code, keys: Object.keys(body.error) }).toEqual({
        status: 400,
        code: "bad_request",
        keys: ["code", "message"],
      });
      expect(body.error.message).toMatch(message);
    });
  }

  it("refuses a malformed event number in the path with 400", async () => {
    const inbox = await server.createInbox();
    const response = await documented("GET", server.admin(`/api/inboxes/${inbox.id}/events/abc`));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
      "path parameter seq must be an event number (1, 2, 3…)",
    );
  });

  it("still reads an empty body as {}", async () => {
    const response = await documented("POST", server.admin("/api/inboxes", { method: "POST" }));
    expect(response.status).toBe(201);
  });
});

describe("replies", () => {
  it("show every setting back: the reply schemas drop nothing", async () => {
    const settings = {
      maxBodyBytes: 4096,
      response: { status: 202, headers: { "X-Reply": "yes" }, body: "stored" },
      retention: { maxEvents: 50, maxAgeSeconds: 3600 },
      dedupe: { header: "X-Delivery", windowSeconds: 60 },
      verify: {
        scheme: "hmac",
        secrets: ["one-secret", "two-secret"],
        mode: "enforce",
        toleranceSeconds: 60,
        hmac: {
          header: "X-Sig",
          algorithm: "sha512",
          encoding: "base64",
          prefix: "v1=",
          signedContent: "{timestamp}.{body}",
          timestampHeader: "X-Ts",
        },
      },
    };
    const created = await documented("POST", server.admin("/api/inboxes", json("POST", { name: "full", settings })));
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const shown = {
      maxBodyBytes: 4096,
      response: { status: 202, headers: { "X-Reply": "yes" }, body: "stored" },
      retention: { maxEvents: 50, maxAgeSeconds: 3600 },
      dedupe: { header: "x-delivery", windowSeconds: 60 },
      verify: {
        scheme: "hmac",
        secrets: 2,
        mode: "enforce",
        toleranceSeconds: 60,
        hmac: {
          header: "x-sig",
          algorithm: "sha512",
          encoding: "base64",
          prefix: "v1=",
          signedContent: "{timestamp}.{body}",
          timestampHeader: "x-ts",
        },
      },
    };
    const fetched = (await (await documented("GET", server.admin(`/api/inboxes/${id}`))).json()) as Record<string, unknown>;
    expect(fetched).toEqual({
      id,
      name: "full",
      ingestUrl: `${server.url}/h/${id}`,
      streamUrl: `${server.url}/v1/stream/inbox/${id}`,
      settings: shown,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastSeq: 0,
      lastEventAt: null,
      silent: false,
      silentSince: null,
    });
    const verification = await documented("GET", server.admin(`/api/inboxes/${id}/verification`));
    expect(await verification.json()).toEqual({ verify: shown.verify, refused: 0, recent: [] });
    const preset = await documented(
      "PATCH",
      server.admin(`/api/inboxes/${id}`, json("PATCH", { settings: { dedupe: "github", verify: null } })),
    );
    expect(((await preset.json()) as { settings: Record<string, unknown> }).settings).toMatchObject({
      dedupe: { preset: "github", header: "x-github-delivery", windowSeconds: 604800 },
    });
  });

  it("of stream tokens, sources and the probes match the document", async () => {
    const token = await documented("POST", server.admin("/api/stream-tokens", json("POST", { prefix: "docs", expiresInSeconds: 60 })));
    expect(token.status).toBe(201);
    const { id: tokenId } = (await token.json()) as { id: string };
    const tokens = await documented("GET", server.admin("/api/stream-tokens"));
    expect(((await tokens.json()) as { tokens: Array<{ id: string }> }).tokens.map((t) => t.id)).toContain(tokenId);
    expect((await documented("DELETE", server.admin(`/api/stream-tokens/${tokenId}`, { method: "DELETE" }))).status).toBe(204);

    const inbox = await server.createInbox();
    const poll = { kind: "poll", url: "http://127.0.0.1:9/state", headers: { Authorization: "Bearer x" }, intervalSeconds: 3600 };
    const source = await documented("POST", server.admin(`/api/inboxes/${inbox.id}/sources`, json("POST", poll)));
    expect(source.status).toBe(201);
    const view = (await source.json()) as { id: string; url: string; credentials: unknown };
    expect(view).toMatchObject({ url: "http://127.0.0.1:9/state", credentials: { headers: ["authorization"] } });
    expect((await documented("GET", server.admin(`/api/inboxes/${inbox.id}/sources`))).status).toBe(200);
    expect((await documented("GET", server.admin(`/api/inboxes/${inbox.id}/sources/${view.id}`))).status).toBe(200);
    expect((await documented("POST", server.admin(`/api/inboxes/${inbox.id}/sources/${view.id}/run`, { method: "POST" }))).status).toBe(
      202,
    );
    expect((await documented("DELETE", server.admin(`/api/inboxes/${inbox.id}/sources/${view.id}`, { method: "DELETE" }))).status).toBe(
      204,
    );
    expect((await documented("GET", server.admin(`/api/inboxes/${inbox.id}/sources/${view.id}`))).status).toBe(404);

    expect(await (await documented("GET", fetch(`${server.url}/healthz`))).json()).toEqual({ status: "ok" });
    expect(await (await documented("GET", fetch(`${server.url}/readyz`))).json()).toEqual({ status: "ready" });
  });
});
