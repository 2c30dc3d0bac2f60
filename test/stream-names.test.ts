/*
 * General stream names reach response headers (Location) and tokens' prefixes, so they
 * are printable ASCII: names with control characters or anything beyond ASCII are
 * refused with 400 on every route, and never created. Printable names that need
 * percent-encoding in a URL (space, "?", "%") come back encoded in Location.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ open: true });
});
afterAll(() => server.stop());

const refusedNames = ["nul%00byte", "line%0Abreak", "tab%09name", "del%7Fname", "caf%C3%A9", "emoji%F0%9F%98%80", "dir/caf%C3%A9/x"];

describe("stream names", () => {
  for (const raw of refusedNames) {
    it(`refuses ${raw} with 400 on every route, and creates nothing`, async () => {
      const url = `${server.url}/v1/stream/${raw}`;
      for (const method of ["PUT", "POST", "GET", "HEAD", "DELETE"]) {
        const response = await fetch(url, {
          method,
          headers: { "content-type": "text/plain" },
          body: method === "PUT" || method === "POST" ? "x" : undefined,
        });
        expect([method, response.status]).toEqual([method, 400]);
      }
      // PostgreSQL text cannot even hold a NUL, so there is nothing to look up there.
      const decoded = decodeURIComponent(raw);
      if (!decoded.includes("\u0000")) expect(await server.store.getStream(decoded)).toBeUndefined();
      // A stream token for such a prefix is refused as well.
      const token = await server.admin("/api/stream-tokens", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prefix: decodeURIComponent(raw), access: "read" }),
      });
      expect(token.status).toBe(400);
    });
  }

  it("percent-encodes a printable name in Location, and the Location reads the stream", async () => {
    const name = "with space/q?mark/100%";
    const response = await fetch(`${server.url}/v1/stream/${name.split("/").map(encodeURIComponent).join("/")}`, {
      method: "PUT",
      headers: { "content-type": "text/plain" },
      body: "hello",
    });
    expect(response.status).toBe(201);
    const location = response.headers.get("location")!;
    expect(location).toBe(`${server.url}/v1/stream/with%20space/q%3Fmark/100%25`);
    const read = await fetch(`${location}?offset=-1`);
    expect([read.status, await read.text()]).toEqual([200, "hello"]);
  });
});
