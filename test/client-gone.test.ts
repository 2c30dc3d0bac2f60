/*
 * How the client reads a 410: the earliest offset, and the key frame the server offers,
 * from the body's `snapshot` detail or a `Link: <…>; rel="snapshot"` header (the shape
 * compaction's 410s carry, docs/key-frames.md).
 */
import { describe, expect, it } from "vitest";
import { goneFromResponse } from "../dist/client/errors.js";

const earliest = "0000000000000000_0000000000000007";

function gone(body: unknown, link?: string): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (link !== undefined) headers.link = link;
  return new Response(JSON.stringify(body), { status: 410, headers });
}

describe("goneFromResponse", () => {
  it("takes the earliest offset and the body's snapshot detail", async () => {
    const error = await goneFromResponse(
      gone({ error: { code: "gone", earliestOffset: earliest, snapshot: "/v1/stream/s?offset=snapshot" } }),
      "x",
    );
    expect(error).toMatchObject({ status: 410, requestedOffset: "x", earliestOffset: earliest, snapshot: "/v1/stream/s?offset=snapshot" });
  });

  it("takes the snapshot from a Link header with rel=snapshot, among other links and rel values", async () => {
    const links = [
      ['</v1/stream/a?offset=snapshot>; rel="snapshot"', "/v1/stream/a?offset=snapshot"],
      ['</docs>; rel="help", </v1/stream/b?offset=snapshot>; rel=snapshot', "/v1/stream/b?offset=snapshot"],
      ['</v1/stream/c?offset=snapshot>; rel="alternate snapshot"; type="application/json"', "/v1/stream/c?offset=snapshot"],
    ];
    for (const [header, target] of links) {
      expect((await goneFromResponse(gone({ error: { earliestOffset: earliest } }, header), "x")).snapshot, header).toBe(target);
    }
  });

  it("has no snapshot without one, and no earliest offset when the body does not say", async () => {
    const plain = await goneFromResponse(gone({ error: { earliestOffset: earliest } }, '</docs>; rel="help"'), "x");
    expect(plain.snapshot).toBeUndefined();
    expect(plain.earliestOffset).toBe(earliest);
    const bare = await goneFromResponse(new Response("not json", { status: 410 }), "x");
    expect(bare).toMatchObject({ earliestOffset: undefined, snapshot: undefined });
  });
});
