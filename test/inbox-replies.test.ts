/*
 * The reply an inbox sends to webhook senders (settings.response): headers must be ones
 * Node can actually send, a committed event is never answered with an error, and
 * 204/304 replies carry neither a Content-Length nor a body.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "node:net";
import { validateHeaderName, validateHeaderValue } from "node:http";
import { isSendableHeaderName, isSendableHeaderValue } from "../dist/core/header-text.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { readAll } from "./helpers/http.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

function nodeAccepts(check: () => void): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}

/** Every code point up to U+02FF, some beyond, and lone surrogates. */
function sampleCharacters(): string[] {
  const codes = [...Array.from({ length: 0x300 }, (_, i) => i), 0x20ac, 0x2028, 0xfeff, 0xfffd, 0xd800, 0xdfff];
  return [...codes.map((code) => String.fromCharCode(code)), "😀"];
}

async function settingsOf(id: string): Promise<unknown> {
  const response = await server.admin(`/api/inboxes/${id}`);
  return ((await response.json()) as { settings: unknown }).settings;
}

async function createWith(settings: unknown): Promise<Response> {
  return server.admin("/api/inboxes", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ settings }),
  });
}

/** One raw connection: everything received is kept, and tests wait for conditions on it. */
function rawConnection(port: number) {
  const socket = connect(port, "127.0.0.1");
  let received = Buffer.alloc(0);
  let ended = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((waiter) => waiter());
  socket.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    wake();
  });
  socket.on("end", () => {
    ended = true;
    wake();
  });
  socket.on("error", () => undefined);
  const waitFor = (predicate: (all: Buffer, ended: boolean) => boolean): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (predicate(received, ended)) {
          waiters.delete(check);
          resolve(received);
        } else if (ended) {
          waiters.delete(check);
          reject(new Error(`connection ended; got: ${received.toString("latin1")}`));
        }
      };
      waiters.add(check);
      check();
    });
  return { socket, waitFor };
}

describe("reply header rules", () => {
  it("match node:http's validateHeaderName and validateHeaderValue, character by character", () => {
    for (const char of sampleCharacters()) {
      const value = `a${char}b`;
      expect([char.codePointAt(0), isSendableHeaderValue(value)]).toEqual([
        char.codePointAt(0),
        nodeAccepts(() => validateHeaderValue("x-test", value)),
      ]);
      const name = `x${char}`;
      expect([char.codePointAt(0), isSendableHeaderName(name)]).toEqual([char.codePointAt(0), nodeAccepts(() => validateHeaderName(name))]);
    }
    expect(isSendableHeaderValue("")).toBe(nodeAccepts(() => validateHeaderValue("x-test", "")));
    expect(isSendableHeaderName("")).toBe(nodeAccepts(() => validateHeaderName("")));
  });
});

describe("inbox reply settings", () => {
  const badHeaders: Array<Record<string, string>> = [
    { "x-nul": "a\u0000b" },
    { "x-euro": "costs 5 €" },
    { "x-bell": "\u0007" },
    { "x-del": "a\u007fb" },
    { "x-newline": "a\nb" },
    { "bad name": "x" },
    { "x-é": "x" },
  ];

  it("refuses headers Node cannot send, at create and at PATCH, and changes nothing", async () => {
    const inbox = await server.createInbox({ settings: { response: { status: 202, headers: { "x-ok": "café\tok" }, body: "thanks" } } });
    const before = await settingsOf(inbox.id);
    expect(before).toMatchObject({ response: { status: 202, headers: { "x-ok": "café\tok" } } });
    const listed = async () => ((await (await server.admin("/api/inboxes")).json()) as { inboxes: unknown[] }).inboxes.length;
    const countBefore = await listed();
    for (const headers of badHeaders) {
      const created = await createWith({ response: { status: 202, headers } });
      expect([JSON.stringify(headers), created.status]).toEqual([JSON.stringify(headers), 400]);
      expect(((await created.json()) as { error: { message: string } }).error.message).toMatch(/header/);
      const patched = await server.admin(`/api/inboxes/${inbox.id}`, {
        method: "PATCH",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ settings: { response: { status: 201, headers } } }),
      });
      expect([JSON.stringify(headers), patched.status]).toEqual([JSON.stringify(headers), 400]);
    }
    expect(await listed()).toBe(countBefore);
    expect(await settingsOf(inbox.id)).toEqual(before);
    // The good header, with its Latin-1 character, reaches the sender as one byte (0xe9).
    const reply = await fetch(inbox.ingestUrl, { method: "POST", body: "x" });
    expect([reply.status, reply.headers.get("x-ok"), await reply.text()]).toEqual([202, "café\tok", "thanks"]);
  });

  it("answers the default ack, once, when stored reply settings cannot be sent (an older database)", async () => {
    const inbox = await server.createInbox();
    // Written through the store, past the API's validation, as an older version could have.
    await server.store.updateInbox(inbox.id, {
      settings: { response: { status: 202, headers: { "x-bad": "nul\u0000 and €" }, body: "custom" } },
    });
    const response = await fetch(inbox.ingestUrl, { method: "POST", body: "payload" });
    const text = await response.text();
    expect([response.status, text]).toEqual([200, expect.stringContaining('"ok":true')]);
    const ack = JSON.parse(text) as { seq: number };
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.length).toBe(1);
    expect(events[0]!.seq).toBe(ack.seq);
  });

  it("refuses a body for 204 and 304 replies", async () => {
    for (const status of [204, 304]) {
      const created = await createWith({ response: { status, body: "not allowed" } });
      expect([status, created.status]).toEqual([status, 400]);
    }
  });

  for (const status of [204, 304]) {
    it(`sends a ${status} reply without Content-Length or body, and the connection's next request is read correctly`, async () => {
      const inbox = await server.createInbox({ settings: { response: { status, headers: { "x-reply": "yes" } } } });
      // The same inbox written past validation with a body, as an older database could hold.
      const stored = await server.createInbox();
      await server.store.updateInbox(stored.id, { settings: { response: { status, headers: {}, body: "leftover" } } });
      for (const target of [inbox, stored]) {
        const id = target.id;
        const connection = rawConnection(Number(new URL(server.url).port));
        try {
          connection.socket.write(`POST /h/${id} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none`);
          const first = await connection.waitFor((all) => all.includes("\r\n\r\n"));
          const head = first.subarray(0, first.indexOf("\r\n\r\n")).toString("latin1");
          expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
          expect(head.toLowerCase()).not.toContain("content-length");
          expect(head.toLowerCase()).not.toContain("transfer-encoding");
          expect(head.toLowerCase()).not.toContain("connection: close");
          // Second request on the same connection: its reply must follow the first head directly.
          connection.socket.write(`POST /h/${id} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntwo`);
          const all = (await connection.waitFor((_all, ended) => ended)).toString("latin1");
          const rest = all.slice(all.indexOf("\r\n\r\n") + 4);
          expect(rest).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
          expect(rest.slice(rest.indexOf("\r\n\r\n") + 4)).toBe("");
        } finally {
          connection.socket.destroy();
        }
        const { events } = await readAll(target.streamUrl, target.token);
        expect(events.length).toBe(2);
      }
    });
  }
});
