/*
 * The HTTP connection edge, on raw sockets against a real in-process server: upgrade
 * offers, huge header blocks, absolute-form targets, pipelining behind a refusal or a
 * malformed request, keep-alive and header timeouts, and the connection limits.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { bodyBytes, readAll } from "./helpers/http.js";
import { startTestServer, type TestServer } from "./helpers/server.js";

interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** One raw client connection that parses the responses it reads, in order. */
class RawConnection {
  readonly responses: ParsedResponse[] = [];
  closed = false;
  private buffer = Buffer.alloc(0);
  readonly socket: Socket;
  readonly connected: Promise<void>;

  constructor(baseUrl: string) {
    const { hostname, port } = new URL(baseUrl);
    this.socket = connect(Number(port), hostname);
    this.connected = new Promise((resolve) => this.socket.once("connect", () => resolve()));
    this.socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => (this.closed = true));
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits until `count` responses were read (or fails at the deadline). */
  async waitForResponses(count: number, timeout = 10_000): Promise<ParsedResponse[]> {
    await vi.waitFor(() => expect(this.responses.length).toBeGreaterThanOrEqual(count), { timeout, interval: 20 });
    return this.responses;
  }

  async waitForClose(timeout = 10_000): Promise<void> {
    await vi.waitFor(() => expect(this.closed).toBe(true), { timeout, interval: 20 });
  }

  end(): void {
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      const split = this.buffer.indexOf("\r\n\r\n");
      if (split === -1) return;
      const lines = this.buffer.subarray(0, split).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      if (this.buffer.length < split + 4 + length) return;
      this.responses.push({ status: Number(lines[0]!.split(" ")[1]), headers, body: this.buffer.subarray(split + 4, split + 4 + length) });
      this.buffer = this.buffer.subarray(split + 4 + length);
    }
  }
}

function post(target: string, body: Buffer | string, headers: string[] = []): Buffer {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  const head = [`POST ${target} HTTP/1.1`, "Host: 127.0.0.1", ...headers, `Content-Length: ${bytes.length}`, "", ""].join("\r\n");
  return Buffer.concat([Buffer.from(head, "latin1"), bytes]);
}

async function storedCount(inbox: { streamUrl: string; token: string }): Promise<number> {
  return (await readAll(inbox.streamUrl, inbox.token)).events.length;
}

describe("HTTP edges", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ open: true, maxBodyBytes: 4096 }, { env: { TAILHOOK_HEADERS_TIMEOUT_MS: "500" } });
  });
  afterAll(() => server.stop());

  it("serves a request that offers Upgrade: h2c as an ordinary request, and stores it byte-exact", async () => {
    const inbox = await server.createInbox();
    const body = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x68, 0x32, 0x63]);
    const connection = new RawConnection(server.url);
    connection.write(
      post(`/h/${inbox.id}/upgrade?x=1`, body, [
        "Connection: Upgrade, HTTP2-Settings",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
      ]),
    );
    const [reply] = await connection.waitForResponses(1);
    expect(reply!.status).toBe(200);
    // What Node 20 pipelined behind an upgrade offer is lost in its parser: the reply closes.
    expect(reply!.headers.connection).toBe("close");
    await connection.waitForClose();
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events).toHaveLength(1);
    expect(bodyBytes(events[0]!).equals(body)).toBe(true);
    expect(events[0]!).toMatchObject({ path: "/upgrade", query: "x=1" });
    expect(events[0]!.headers).toContainEqual(["Upgrade", "h2c"]);

    // A WebSocket offer outside /v1/ws is an ordinary request too.
    const again = new RawConnection(server.url);
    again.write(
      post(`/h/${inbox.id}`, "ws", [
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      ]),
    );
    expect((await again.waitForResponses(1))[0]!.status).toBe(200);
    again.end();
    expect(await storedCount(inbox)).toBe(2);
  });

  it("stores 1,500 request headers, all of them in order", async () => {
    const inbox = await server.createInbox();
    const names = Array.from({ length: 1500 }, (_, i) => `h${i}`);
    const connection = new RawConnection(server.url);
    connection.write(
      post(
        `/h/${inbox.id}`,
        "many",
        names.map((name) => `${name}:v`),
      ),
    );
    expect((await connection.waitForResponses(1))[0]!.status).toBe(200);
    connection.end();
    const [event] = (await readAll(inbox.streamUrl, inbox.token)).events;
    const sent = event!.headers.filter(([name]) => /^h\d+$/.test(name)).map(([name]) => name);
    expect(sent).toEqual(names);
  });

  it("refuses a header block over the limit with 431 and stores nothing", async () => {
    const inbox = await server.createInbox();
    const connection = new RawConnection(server.url);
    connection.write(post(`/h/${inbox.id}`, "big", [`X-Big: ${"a".repeat(20 * 1024)}`]));
    expect((await connection.waitForResponses(1))[0]!.status).toBe(431);
    await connection.waitForClose();
    expect(await storedCount(inbox)).toBe(0);
  });

  it("accepts absolute-form targets for ingest, stream appends and the router", async () => {
    const inbox = await server.createInbox();
    const authority = new URL(server.url).host;
    const connection = new RawConnection(server.url);
    connection.write(post(`http://${authority}/h/${inbox.id}/sub/path?a=1&b=%20`, "absolute"));
    connection.write(post(`HTTP://${authority}/h/${inbox.id}?only=query`, "upper-case scheme"));
    expect(
      (await fetch(`${server.url}/v1/stream/edge/absolute`, { method: "PUT", headers: { "content-type": "text/plain" } })).status,
    ).toBe(201);
    connection.write(post(`http://${authority}/v1/stream/edge/absolute`, "appended", ["Content-Type: text/plain"]));
    connection.write(`GET http://${authority}/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const replies = await connection.waitForResponses(4);
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 204, 200]);
    connection.end();
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => [event.path, event.query, bodyBytes(event).toString()])).toEqual([
      ["/sub/path", "a=1&b=%20", "absolute"],
      ["", "only=query", "upper-case scheme"],
    ]);
    const stream = await fetch(`${server.url}/v1/stream/edge/absolute?offset=-1`);
    expect(await stream.text()).toBe("appended");
  });

  it("does not process requests pipelined behind a 404 that closes the connection", async () => {
    const inbox = await server.createInbox();
    const connection = new RawConnection(server.url);
    connection.write(
      Buffer.concat([post("/h/in_doesnotexist000000000", "lost?"), post(`/h/${inbox.id}`, "one"), post(`/h/${inbox.id}`, "two")]),
    );
    await connection.waitForClose();
    const replies = connection.responses;
    expect(replies[0]!.status).toBe(404);
    // Stored means answered: a request behind the close is either both or neither.
    expect(await storedCount(inbox)).toBe(replies.length - 1);
    expect(replies).toHaveLength(1);
  });

  it("does not process requests pipelined behind a 413 that closes the connection", async () => {
    const inbox = await server.createInbox();
    const connection = new RawConnection(server.url);
    connection.write(Buffer.concat([post(`/h/${inbox.id}`, Buffer.alloc(5000, 1)), post(`/h/${inbox.id}`, "one")]));
    await connection.waitForClose();
    expect(connection.responses.map((reply) => reply.status)).toEqual([413]);
    expect(await storedCount(inbox)).toBe(0);
  });

  it("answers a malformed request only after the replies to the requests before it", async () => {
    const inbox = await server.createInbox();
    const connection = new RawConnection(server.url);
    connection.write(
      Buffer.concat([post(`/h/${inbox.id}`, "first"), post(`/h/${inbox.id}`, "second"), Buffer.from("\x00\x01garbage\r\n\r\n")]),
    );
    await connection.waitForClose();
    expect(connection.responses.map((reply) => reply.status)).toEqual([200, 200, 400]);
    const seqs = connection.responses.slice(0, 2).map((reply) => (JSON.parse(reply.body.toString()) as { seq: number }).seq);
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => [event.seq, bodyBytes(event).toString()])).toEqual([
      [seqs[0], "first"],
      [seqs[1], "second"],
    ]);
  });

  it("keeps an idle keep-alive connection open past Node's 5 s default", async () => {
    const inbox = await server.createInbox();
    const connection = new RawConnection(server.url);
    connection.write(post(`/h/${inbox.id}`, "before the pause"));
    await connection.waitForResponses(1);
    // The idle time itself is what is under test: one wait longer than Node's 5 s default.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(connection.closed).toBe(false);
    connection.write(post(`/h/${inbox.id}`, "after the pause"));
    const replies = await connection.waitForResponses(2);
    expect(replies.map((reply) => reply.status)).toEqual([200, 200]);
    connection.end();
    expect(await storedCount(inbox)).toBe(2);
  }, 20_000);

  it("cuts a connection whose headers never finish (slowloris) at the header timeout", async () => {
    const connection = new RawConnection(server.url);
    await connection.connected;
    connection.write("POST /h/in_x HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const trickle = setInterval(() => connection.write("X-Slow: 1\r\n"), 100);
    try {
      await connection.waitForClose(8000);
    } finally {
      clearInterval(trickle);
    }
    expect(connection.responses.map((reply) => reply.status)).toEqual([408]);
  });
});

describe("connection limits", () => {
  async function accepted(server: TestServer): Promise<RawConnection> {
    const connection = new RawConnection(server.url);
    connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const [reply] = await connection.waitForResponses(1);
    expect(reply!.status).toBe(200);
    return connection;
  }

  async function expectRefused(server: TestServer): Promise<void> {
    const connection = new RawConnection(server.url);
    connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await connection.waitForClose();
    expect(connection.responses).toHaveLength(1);
    expect(connection.responses[0]!.status).toBe(503);
    expect(connection.responses[0]!.headers["retry-after"]).toBeDefined();
  }

  it("refuses connections past the per-address limit, and accepts again once one closes", async () => {
    const server = await startTestServer({ maxConnections: 100, maxConnectionsPerAddress: 2 });
    try {
      const first = await accepted(server);
      const second = await accepted(server);
      await expectRefused(server);
      first.end();
      await vi.waitFor(async () => (await accepted(server)).end(), { timeout: 5000, interval: 50 });
      second.end();
    } finally {
      await server.stop();
    }
  });

  it("refuses connections past the global limit, and accepts again once one closes", async () => {
    const server = await startTestServer({ maxConnections: 2, maxConnectionsPerAddress: 0 });
    try {
      const first = await accepted(server);
      const second = await accepted(server);
      await expectRefused(server);
      second.end();
      await vi.waitFor(async () => (await accepted(server)).end(), { timeout: 5000, interval: 50 });
      first.end();
    } finally {
      await server.stop();
    }
  });
});
