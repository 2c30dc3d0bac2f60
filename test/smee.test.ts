/*
 * smee-client compatibility: the payload mapping, the raw SSE format of /smee/<id>,
 * and the unmodified smee-client CLI (a child process) forwarding tailhook events to a
 * local target, across a server restart on the same port and data folder.
 */
import { rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { flattenHeaders, parseQuery, toSmeePayload } from "../dist/core/smee-payload.js";
import type { EventEnvelope } from "../dist/core/types.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { SseReader, type SseEvent } from "./helpers/sse-reader.js";
import {
  cleanEnv,
  killAllChildren,
  sleep,
  spawnNode,
  startServerProcess,
  tempDir,
  type Child,
  type ServerProcess,
} from "./helpers/processes.js";
import { createInboxOn, type CreatedInbox } from "./helpers/inbox.js";
import { waitUntil } from "./helpers/wait.js";

const SMEE_BIN = fileURLToPath(new URL("../node_modules/smee-client/bin/smee.js", import.meta.url));

interface Forwarded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The local target smee-client forwards to: records requests in the order they arrived. */
class Target {
  readonly received: Forwarded[] = [];
  private readonly server: Server;
  private readonly listeners = new Set<() => void>();

  constructor() {
    this.server = createServer((req, res) => {
      // The slot is taken when the request arrives, not when its body is complete.
      const record: Forwarded = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: "" };
      this.received.push(record);
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        record.body = Buffer.concat(chunks).toString("utf8");
        res.end("ok");
        for (const listener of [...this.listeners]) listener();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once `count` requests were read completely. */
  waitForCount(count: number, timeoutMs = 15_000): Promise<Forwarded[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.received.filter((r) => r.body !== "").length < count) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(this.received);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out waiting for ${count} forwarded requests; got ${this.received.length}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function envelope(overrides: Partial<EventEnvelope>): EventEnvelope {
  return {
    seq: 1,
    id: "evt_x",
    receivedAt: "2026-01-02T03:04:05.678Z",
    method: "POST",
    path: "",
    query: "",
    headers: [],
    contentType: null,
    size: 0,
    body: "",
    bodyEncoding: "utf8",
    remoteAddr: "127.0.0.1",
    ...overrides,
  };
}

function textEnvelope(body: string, contentType: string | null, extraHeaders: Array<[string, string]> = []): EventEnvelope {
  const headers: Array<[string, string]> = contentType === null ? extraHeaders : [["Content-Type", contentType], ...extraHeaders];
  return envelope({ headers, contentType, body, size: Buffer.byteLength(body) });
}

describe("the smee payload", () => {
  it("flattens headers exactly as Node builds req.headers (which smee.io sends)", async () => {
    const raw = [
      "POST /x HTTP/1.1",
      "Host: example.test",
      "X-Mixed: one",
      "x-mixed: two",
      "Cookie: a=1",
      "Cookie: b=2",
      "Set-Cookie: s=1",
      "Set-Cookie: s=2",
      "User-Agent: first",
      "User-Agent: second",
      "Content-Type: text/plain",
      "Content-Type: application/json",
      "Accept: a",
      "Accept: b",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    const seen = await new Promise<{ headers: IncomingHttpHeaders; rawHeaders: string[] }>((resolve, reject) => {
      const server = createServer((req, res) => {
        res.end();
        server.close();
        resolve({ headers: req.headers, rawHeaders: req.rawHeaders });
      });
      server.listen(0, "127.0.0.1", () => {
        const socket = connect((server.address() as AddressInfo).port, "127.0.0.1", () => socket.end(raw));
        socket.on("error", reject);
        socket.resume();
      });
    });
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < seen.rawHeaders.length; i += 2) pairs.push([seen.rawHeaders[i]!, seen.rawHeaders[i + 1]!]);
    expect({ ...flattenHeaders(pairs) }).toEqual({ ...seen.headers });
  });

  it("parses the query like Node's querystring: repeated keys become arrays", () => {
    expect({ ...parseQuery("a=1&b=two+words&a=2&c=%C3%A9&empty=") }).toEqual({ a: ["1", "2"], b: "two words", c: "é", empty: "" });
    expect({ ...parseQuery("") }).toEqual({});
    const tricky = parseQuery("__proto__=x&constructor=y");
    expect(Object.keys(tricky)).toEqual(["__proto__", "constructor"]);
    expect(JSON.parse(JSON.stringify(tricky))).toEqual(JSON.parse('{"__proto__":"x","constructor":"y"}'));
  });

  it("parses JSON bodies (also +json), keeps other text, base64s binary and turns an empty body into {}", () => {
    expect(toSmeePayload(textEnvelope('{"a":[1,2]}', "application/json; charset=utf-8")).body).toEqual({ a: [1, 2] });
    expect(toSmeePayload(textEnvelope('{"b":true}', "application/vnd.github+json")).body).toEqual({ b: true });
    expect(toSmeePayload(textEnvelope("not json", "application/json")).body).toBe("not json");
    expect(toSmeePayload(textEnvelope('{"a":1}', "text/plain")).body).toBe('{"a":1}');
    expect(toSmeePayload(textEnvelope("a=1&b=2", "application/x-www-form-urlencoded")).body).toBe("a=1&b=2");
    expect(toSmeePayload(textEnvelope("", "application/json")).body).toEqual({});
    const binary = toSmeePayload(envelope({ body: "//4A", bodyEncoding: "base64", size: 3 }));
    expect(binary.body).toBe("//4A");
    expect(binary["x-tailhook-body-encoding"]).toBe("base64");
    expect(toSmeePayload(textEnvelope("text", null))["x-tailhook-body-encoding"]).toBeUndefined();
  });

  it("leaves out headers that break smee-client's forwarding, and lets body/query/timestamp win", () => {
    const payload = toSmeePayload(
      envelope({
        query: "x=1",
        headers: [
          ["Host", "example.test"],
          ["Transfer-Encoding", "chunked"],
          ["Connection", "keep-alive"],
          ["Keep-Alive", "timeout=5"],
          ["Upgrade", "h2c"],
          ["Expect", "100-continue"],
          ["Sec-Fetch-Mode", "navigate"],
          ["Content-Length", "12"],
          ["X-GitHub-Event", "push"],
          ["Body", "sneaky"],
          ["Timestamp", "sneaky"],
        ],
      }),
    );
    expect(payload).toEqual({
      host: "example.test",
      "x-github-event": "push",
      body: {},
      query: { x: "1" },
      timestamp: Date.parse("2026-01-02T03:04:05.678Z"),
    });
  });
});

describe("GET /smee/<inbox-id>: the raw SSE format", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(
      {},
      { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50", TAILHOOK_SSE_KEEPALIVE_MS: "100" } }, // pings every 200 ms
    );
  });
  afterAll(() => server.stop());

  async function post(inbox: CreatedInbox, n: number, path = ""): Promise<number> {
    const response = await fetch(`${inbox.ingestUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ n }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { seq: number }).seq;
  }

  const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;
  const bodies = (events: SseEvent[]) => events.map((event) => (JSON.parse(event.data) as { body: { n: number } }).body.n);

  it("the create reply has smeeUrl with the token; GET and list leave it out", async () => {
    const inbox = await createInboxOn(server);
    expect(inbox.smeeUrl).toBe(`${server.url}/smee/${inbox.id}?token=${inbox.token}`);
    const one = (await (await server.admin(`/api/inboxes/${inbox.id}`)).json()) as Record<string, unknown>;
    expect(one.smeeUrl).toBeUndefined();
    const list = (await (await server.admin("/api/inboxes")).json()) as { inboxes: Array<Record<string, unknown>> };
    expect(list.inboxes.every((entry) => entry.smeeUrl === undefined)).toBe(true);
  });

  it("starts at the tail with a ready event, then message events with id: = offset, pings without id", async () => {
    const inbox = await createInboxOn(server);
    await post(inbox, 0); // before the connection: not sent
    const sse = await SseReader.open(inbox.smeeUrl);
    expect(sse.response.status).toBe(200);
    expect(sse.response.headers.get("content-type")).toBe("text/event-stream");
    expect(sse.response.headers.get("cache-control")).toBe("no-cache");
    const [ready] = await sse.waitFor((events) => events.length >= 1);
    expect(ready).toEqual({ event: "ready", data: "{}", id: offset(1), retry: 1000 });

    const ingested = await fetch(`${inbox.ingestUrl}/some/path?a=1&b=x&b=y`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "push", "X-Dup": "one" },
      body: '{"n":1,"nested":{"ok":true}}',
    });
    const { seq } = (await ingested.json()) as { seq: number };
    await post(inbox, 2);
    await sse.waitFor((events) => events.filter((e) => e.event === "message").length >= 2);
    const [first, second] = sse.messages();
    expect(first!.id).toBe(offset(seq));
    expect(second!.id).toBe(offset(seq + 1));
    const data = JSON.parse(first!.data) as Record<string, unknown>;
    expect(data).toMatchObject({
      "content-type": "application/json",
      "x-github-event": "push",
      "x-dup": "one",
      body: { n: 1, nested: { ok: true } },
      query: { a: "1", b: ["x", "y"] },
    });
    expect(data.host).toBe(new URL(server.url).host);
    expect(typeof data.timestamp).toBe("number");
    expect(Math.abs((data.timestamp as number) - Date.now())).toBeLessThan(10_000);
    expect(data).not.toHaveProperty("content-length");
    expect(data).not.toHaveProperty("connection");

    await sse.waitFor((events) => events.some((e) => e.event === "ping"));
    const pings = sse.events.filter((e) => e.event === "ping");
    expect(pings.every((ping) => ping.id === undefined && ping.data === "{}")).toBe(true);
    // Only ready, messages and pings: no other event names.
    expect(new Set(sse.events.map((e) => e.event))).toEqual(new Set(["ready", "message", "ping"]));
    sse.close();
  });

  it("resumes after Last-Event-ID with no gap and no repeat, and wakes on new events", async () => {
    const inbox = await createInboxOn(server);
    for (let n = 1; n <= 5; n++) await post(inbox, n);
    const sse = await SseReader.open(inbox.smeeUrl, { "last-event-id": offset(2) });
    await sse.waitFor((events) => events.filter((e) => e.event === "message").length >= 3);
    expect(sse.events[0]).toMatchObject({ event: "ready", id: offset(2) });
    await post(inbox, 6);
    await sse.waitFor((events) => events.filter((e) => e.event === "message").length >= 4);
    // A sentinel after it: a repeat of anything before would come ahead of it.
    await post(inbox, 7);
    await sse.waitFor((events) => events.some((e) => e.event === "message" && e.id === offset(7)));
    expect(sse.messages().map((e) => e.id)).toEqual([3, 4, 5, 6, 7].map(offset));
    expect(bodies(sse.messages())).toEqual([3, 4, 5, 6, 7]);
    sse.close();
  });

  it("from=-1 replays what is retained; Last-Event-ID wins over from; a foreign Last-Event-ID is ignored", async () => {
    const inbox = await createInboxOn(server);
    for (let n = 1; n <= 3; n++) await post(inbox, n);
    const all = await SseReader.open(`${inbox.smeeUrl}&from=-1`);
    await all.waitFor((events) => events.filter((e) => e.event === "message").length >= 3);
    expect(bodies(all.messages())).toEqual([1, 2, 3]);
    all.close();

    const resumed = await SseReader.open(`${inbox.smeeUrl}&from=-1`, { "last-event-id": offset(2) });
    await resumed.waitFor((events) => events.filter((e) => e.event === "message").length >= 1);
    // A sentinel: had from=-1 won, events 1 and 2 would come ahead of it.
    await post(inbox, 4);
    await resumed.waitFor((events) => events.some((e) => e.event === "message" && e.id === offset(4)));
    expect(bodies(resumed.messages())).toEqual([3, 4]);
    resumed.close();

    // smee.io's own ids are small counters; one of them must not be read as our offset.
    const foreign = await SseReader.open(inbox.smeeUrl, { "last-event-id": "2" });
    await foreign.waitFor((events) => events.length >= 1);
    expect(foreign.events[0]).toMatchObject({ event: "ready", id: offset(4) });
    await post(inbox, 5);
    await foreign.waitFor((events) => events.filter((e) => e.event === "message").length >= 1);
    expect(bodies(foreign.messages())).toEqual([5]);
    foreign.close();
  });

  it("a Last-Event-ID behind retention gets a lost event, then the earliest retained events", async () => {
    const inbox = await createInboxOn(server, { settings: { retention: { maxEvents: 2 } } });
    for (let n = 1; n <= 6; n++) await post(inbox, n);
    await waitUntil(
      async () => (await server.admin(`/api/inboxes/${inbox.id}/events/4`)).status === 410,
      "the prune pass to remove event 4",
    );
    const sse = await SseReader.open(inbox.smeeUrl, { "last-event-id": offset(1) });
    await sse.waitFor((events) => events.filter((e) => e.event === "message").length >= 2);
    const [ready, lost, ...rest] = sse.events;
    expect(ready).toMatchObject({ event: "ready", id: offset(1) });
    expect(lost).toMatchObject({ event: "lost", id: offset(4) });
    expect(JSON.parse(lost!.data)).toEqual({ requestedOffset: offset(1), earliestOffset: offset(4), lostEvents: 3 });
    expect(rest.filter((e) => e.event === "message").map((e) => e.id)).toEqual([offset(5), offset(6)]);
    sse.close();
  });

  it("accepts the token as Bearer; refuses bad tokens (401), unknown inboxes (404 for admin) and bad from (400)", async () => {
    const inbox = await createInboxOn(server);
    const url = `${server.url}/smee/${inbox.id}`;
    const bearer = await SseReader.open(url, { authorization: `Bearer ${inbox.token}` });
    expect(bearer.response.status).toBe(200);
    await bearer.waitFor((events) => events.length >= 1);
    bearer.close();
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(`${url}?token=thk_wrong`)).status).toBe(401);
    const other = await createInboxOn(server);
    expect((await fetch(`${url}?token=${other.token}`)).status).toBe(401);
    expect((await fetch(`${server.url}/smee/noSuchInbox0000000000000?token=${inbox.token}`)).status).toBe(401);
    expect((await server.admin("/smee/noSuchInbox0000000000000")).status).toBe(404);
    expect((await fetch(`${inbox.smeeUrl}&from=yesterday`)).status).toBe(400);
    expect((await fetch(`${inbox.smeeUrl}&from=${offset(99)}`)).status).toBe(400);
  });

  it("ends the stream when the inbox is deleted, and the reconnect is refused", async () => {
    const inbox = await createInboxOn(server);
    const sse = await SseReader.open(inbox.smeeUrl);
    await sse.waitFor((events) => events.length >= 1);
    expect((await server.admin(`/api/inboxes/${inbox.id}`, { method: "DELETE" })).status).toBe(204);
    // Deletion wakes nobody; the next ping's read notices it.
    await sse.waitFor(() => sse.ended).catch(() => undefined);
    expect(sse.ended).toBe(true);
    expect((await fetch(inbox.smeeUrl)).status).toBe(401);
  });

  it("ends open streams when the server shuts down", async () => {
    const own = await startTestServer({}, { env: {} });
    const created = await createInboxOn(own);
    const sse = await SseReader.open(created.smeeUrl);
    await sse.waitFor((events) => events.length >= 1);
    await own.stop();
    await sse.waitFor(() => sse.ended);
    expect(sse.ended).toBe(true);
  });
});

describe("the real smee-client forwarding tailhook events", () => {
  const dirs: string[] = [];
  let target: Target;
  let targetUrl: string;

  beforeAll(async () => {
    target = new Target();
    targetUrl = await target.listen();
  });
  afterEach(async () => {
    await killAllChildren();
    target.received.length = 0;
  });
  afterAll(async () => {
    await target.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function server(options: { dataDir?: string; port?: number } = {}): Promise<ServerProcess> {
    const dataDir = options.dataDir ?? tempDir("tailhook-smee-");
    if (!dirs.includes(dataDir)) dirs.push(dataDir);
    return startServerProcess({ dataDir, ...(options.port ? { port: options.port } : {}) });
  }

  /** `smee --url <url> --target <target>/hook`, as a user runs it (no proxy in between). */
  function spawnSmee(url: string): Child {
    const env = cleanEnv();
    for (const name of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(name)) delete env[name];
    return spawnNode([SMEE_BIN, "--url", url, "--target", `${targetUrl}/hook`], env);
  }

  async function startSmee(url: string): Promise<Child> {
    const smee = spawnSmee(url);
    await connected(smee, 1);
    return smee;
  }

  function connected(smee: Child, times: number, timeoutMs = 10_000): Promise<string[]> {
    return smee.stdout.waitFor(
      (lines) => lines.filter((line) => line.startsWith("Connected to ")).length >= times,
      timeoutMs,
      `smee-client connection #${times}`,
    );
  }

  async function postJson(ingestUrl: string, n: number): Promise<number> {
    const response = await fetch(ingestUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ n }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { seq: number }).seq;
  }

  const numbers = (requests: Forwarded[]) => requests.map((r) => (JSON.parse(r.body) as { n: number }).n);

  it("forwards method, body, headers and query as smee-client does for smee.io", async () => {
    const srv = await server();
    const inbox = await createInboxOn(srv);
    const smee = await startSmee(inbox.smeeUrl);

    const signature = "sha256=0123456789abcdef";
    await fetch(`${inbox.ingestUrl}?installation=42&tag=a&tag=b`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "pull_request",
        "x-hub-signature-256": signature,
        "x-github-delivery": "d-1",
      },
      body: '{ "action": "opened", "number": 7, "list": [1, 2] }',
    });
    // One at a time: smee-client's concurrent forwards may otherwise arrive in any order.
    await target.waitForCount(1);
    await fetch(inbox.ingestUrl, { method: "PUT", headers: { "content-type": "text/plain" }, body: "plain text" });
    await target.waitForCount(2);
    await fetch(inbox.ingestUrl, { method: "GET" });
    await target.waitForCount(3);
    await fetch(inbox.ingestUrl, { method: "POST", body: new Uint8Array([0xff, 0xfe, 0x00]) });
    await target.waitForCount(4);
    // A sentinel: anything extra forwarded for the four would arrive ahead of it.
    await postJson(inbox.ingestUrl, 5);
    const all = await target.waitForCount(5);
    expect(all).toHaveLength(5);
    expect(numbers(all.slice(4))).toEqual([5]);
    const received = all.slice(0, 4);

    const [json, text, empty, binary] = received;
    // smee-client always POSTs JSON to the target, with the event's query merged in.
    for (const request of received) {
      expect(request.method).toBe("POST");
      expect(request.headers["content-type"]).toBe("application/json");
      expect(request.headers.host).toBe(new URL(targetUrl).host);
      expect(request.headers.timestamp).toMatch(/^\d{13}$/);
    }
    expect(json!.url).toBe("/hook?installation=42&tag=a%2Cb");
    expect(JSON.parse(json!.body)).toEqual({ action: "opened", number: 7, list: [1, 2] });
    expect(json!.headers["x-github-event"]).toBe("pull_request");
    expect(json!.headers["x-hub-signature-256"]).toBe(signature);
    expect(json!.headers["x-github-delivery"]).toBe("d-1");
    expect(json!.headers["content-length"]).toBe(String(Buffer.byteLength(json!.body)));

    expect(text!.url).toBe("/hook");
    expect(JSON.parse(text!.body)).toBe("plain text");
    expect(JSON.parse(empty!.body)).toEqual({});
    expect(JSON.parse(binary!.body)).toBe(Buffer.from([0xff, 0xfe, 0x00]).toString("base64"));
    expect(binary!.headers["x-tailhook-body-encoding"]).toBe("base64");
    expect(smee.stderr.text).toBe("");
  });

  it("with a wrong token smee-client stops at once (a 401 ends an EventSource for good)", async () => {
    const srv = await server();
    const inbox = await createInboxOn(srv);
    const smee = spawnSmee(`${srv.url}/smee/${inbox.id}?token=thk_wrong`);
    const exit = await Promise.race([smee.exited, sleep(10_000).then(() => "still running" as const)]);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(smee.stdout.text).not.toContain("Connected to");
  });

  it("forwards every event exactly once, in order, across a server SIGTERM and restart on the same port", async () => {
    const dataDir = tempDir("tailhook-smee-restart-");
    const first = await server({ dataDir });
    const inbox = await createInboxOn(first);
    const smee = await startSmee(inbox.smeeUrl);
    const sent: number[] = [];
    const send = async (srv: ServerProcess, n: number) => {
      await postJson(inbox.ingestUrl.replace(first.url, srv.url), n);
      sent.push(n);
    };

    // smee-client forwards each message without waiting for the previous forward, and
    // a forward that waits for a new connection can be overtaken by the next one on a
    // freed connection: live events are sent one forward at a time so that the
    // target's arrival order is the order smee-client got them.
    const sendLive = async (srv: ServerProcess, n: number) => {
      await send(srv, n);
      await target.waitForCount(sent.length);
    };

    for (let n = 1; n <= 5; n++) await sendLive(first, n);

    const stopped = await Promise.race([first.kill("SIGTERM"), sleep(8_000).then(() => "did not stop" as const)]);
    expect(stopped).toEqual({ code: 0, signal: null });
    // smee-client noticed: it is now failing to reconnect, once a second.
    await smee.stderr.waitFor(
      (lines) => lines.some((line) => line.includes("Error in connection") || line.includes("Connection closed")),
      10_000,
      "smee-client to see the server go",
    );

    const second = await server({ dataDir, port: first.port });
    expect(second.url).toBe(first.url);
    // Sent while smee-client is (most likely) between reconnect attempts: a burst on reconnect...
    for (let n = 6; n <= 10; n++) await send(second, n);
    await connected(smee, 2);
    await target.waitForCount(sent.length);
    // ...and live after it is back.
    for (let n = 11; n <= 15; n++) await sendLive(second, n);
    // A sentinel after the fifteen: a repeat of any of them would have been forwarded ahead of it.
    await sendLive(second, 16);
    const received = await target.waitForCount(16);
    expect(numbers(target.received)).toEqual(sent);
    expect(sent).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(received.every((request) => request.method === "POST" && request.url === "/hook")).toBe(true);
    expect(smee.running).toBe(true);
  }, 45_000);

  it("a restart before the first event loses nothing: the ready event's id pins 'now'", async () => {
    const dataDir = tempDir("tailhook-smee-now-");
    const first = await server({ dataDir });
    const inbox = await createInboxOn(first);
    await postJson(inbox.ingestUrl, 0); // before smee-client: not forwarded
    const smee = await startSmee(inbox.smeeUrl);
    await first.kill("SIGTERM");

    const second = await server({ dataDir, port: first.port });
    // Sent before smee-client reconnects: a reconnect "from now" would skip these.
    await postJson(inbox.ingestUrl, 1);
    await postJson(inbox.ingestUrl, 2);
    await connected(smee, 2);
    await target.waitForCount(2);
    await postJson(inbox.ingestUrl, 3);
    await target.waitForCount(3);
    // A sentinel: event 0 (before smee-client) or a repeat would have come ahead of it.
    await postJson(inbox.ingestUrl, 4);
    await target.waitForCount(4);
    expect(numbers(target.received)).toEqual([1, 2, 3, 4]);
    expect(second.running).toBe(true);
  }, 45_000);
});
