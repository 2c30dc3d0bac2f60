/*
 * /metrics against a real server on either store: the page passes `promtool check
 * metrics` (Debian's prometheus package, installed by .ci/run), counters move by
 * exactly what a known workload did (ingests, a duplicate, a refused signature), an
 * open SSE reader shows in the gauge and goes away, consumer lag is read at scrape
 * time, per-inbox labels are off by default and capped when on. Access: the admin
 * token on the main port; --metrics-port answers without one, on 127.0.0.1 only.
 */
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startTestServer, testBackend, type TestServer } from "./helpers/server.js";
import { rawMessage, sendRaw, smtpTarget } from "./helpers/smtp.js";
import { waitUntil } from "./helpers/wait.js";

type Labels = Record<string, string>;

/** The value of one sample of the exposition text (labels must match exactly), or undefined. */
function sample(text: string, name: string, labels: Labels = {}): number | undefined {
  const wanted = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(",");
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, key, value]) => [key!, value!] as const)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => `${key}="${value}"`)
      .join(",");
    if (found === wanted) return Number(match[3]);
  }
  return undefined;
}

function promtool(text: string): { status: number | null; output: string } {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (run.error) throw new Error(`promtool is needed (Debian: apt-get install prometheus): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

async function scrape(server: TestServer): Promise<string> {
  const response = await server.admin("/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
}

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe(`/metrics (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it("passes promtool check metrics after a workload, with process metrics", async () => {
    const inbox = await server.createInbox();
    expect((await post(inbox.ingestUrl, "{}")).status).toBe(200);
    const text = await scrape(server);
    const check = promtool(text);
    expect(check.output).toBe("");
    expect(check.status).toBe(0);
    expect(sample(text, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(sample(text, "tailhook_data_dir_free_bytes")).toBeGreaterThan(0);
    expect(sample(text, "tailhook_retention_removed_total")).toBe(0);
    expect(sample(text, "tailhook_compaction_removed_total")).toBe(0);
    if (testBackend === "sqlite") expect(sample(text, "tailhook_sqlite_wal_bytes")).toBeGreaterThan(0);
    else expect(sample(text, "tailhook_sqlite_wal_bytes")).toBe(0);
  });

  it("counts N ingests by route pattern and status, their bytes, commits and batches; never the inbox id", async () => {
    const inbox = await server.createInbox();
    const before = await scrape(server);
    const bodies = ["{}", '{"a":1}', '{"text":"ünïcødé"}', "[1,2,3]", '"x"'];
    for (const body of bodies) expect((await post(`${inbox.ingestUrl}/sub/path?q=1`, body)).status).toBe(200);
    expect((await post(`${server.url}/h/${"x".repeat(24)}`, "{}")).status).toBe(404);
    const after = await scrape(server);
    const delta = (name: string, labels: Labels = {}) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    const bytes = bodies.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
    expect(delta("tailhook_http_requests_total", { method: "POST", route: "/h/:inbox", status: "200" })).toBe(bodies.length);
    expect(delta("tailhook_http_requests_total", { method: "POST", route: "/h/:inbox", status: "404" })).toBe(1);
    expect(delta("tailhook_ingest_bytes_total", { inbox: "_other" })).toBe(bytes);
    expect(delta("tailhook_ingest_events_total", { inbox: "_other" })).toBe(bodies.length);
    expect(delta("tailhook_commit_duration_seconds_count")).toBe(bodies.length);
    expect(delta("tailhook_group_commit_batch_size_sum")).toBeGreaterThanOrEqual(bodies.length);
    expect(delta("tailhook_store_errors_total", { operation: "appendEvent" })).toBe(0);
    // The admin scrape itself is counted by its route, too.
    expect(delta("tailhook_http_requests_total", { method: "GET", route: "/metrics", status: "200" })).toBe(1);
    expect(after).not.toContain(inbox.id);
    expect(after).not.toContain("/sub/path");
  });

  it("counts a dedupe duplicate once, and does not count it as ingested", async () => {
    const inbox = await server.createInbox({ settings: { dedupe: "idempotency-key" } });
    const before = await scrape(server);
    for (let i = 0; i < 2; i++) expect((await post(inbox.ingestUrl, '{"n":1}', { "idempotency-key": "key-1" })).status).toBe(200);
    const after = await scrape(server);
    const delta = (name: string, labels: Labels = {}) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    expect(delta("tailhook_dedupe_duplicates_total", { inbox: "_other" })).toBe(1);
    expect(delta("tailhook_ingest_events_total", { inbox: "_other" })).toBe(1);
  });

  it("counts a signature that does not verify, by scheme and mode", async () => {
    const inbox = await server.createInbox({ settings: { verify: { scheme: "github", secrets: ["a-github-secret"], mode: "enforce" } } });
    const before = await scrape(server);
    const refused = await post(inbox.ingestUrl, "{}", { "x-hub-signature-256": `sha256=${"0".repeat(64)}` });
    expect(refused.status).toBe(401);
    const after = await scrape(server);
    const labels = { scheme: "github", mode: "enforce" };
    expect(
      (sample(after, "tailhook_verification_failures_total", labels) ?? 0) -
        (sample(before, "tailhook_verification_failures_total", labels) ?? 0),
    ).toBe(1);
    expect(sample(after, "tailhook_ingest_events_total", { inbox: "_other" })).toBe(
      sample(before, "tailhook_ingest_events_total", { inbox: "_other" }),
    );
  });

  it("shows an open SSE reader in the gauge until it goes away", async () => {
    const inbox = await server.createInbox();
    const open = async () => sample(await scrape(server), "tailhook_open_readers", { transport: "sse" });
    expect(await open()).toBe(0);
    const controller = new AbortController();
    const response = await fetch(`${inbox.streamUrl}?offset=now&live=sse&token=${inbox.token}`, { signal: controller.signal });
    expect(response.status).toBe(200);
    await waitUntil(async () => (await open()) === 1, "the SSE reader in tailhook_open_readers");
    controller.abort();
    await waitUntil(async () => (await open()) === 0, "the SSE reader gone from tailhook_open_readers");
  });

  it("answers 401 without the admin token, and with an inbox's token", async () => {
    const inbox = await server.createInbox();
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${inbox.token}` } })).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer not-the-admin-token" } })).status).toBe(401);
  });
});

describe(`/metrics per inbox and consumer lag (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ metricsPerInbox: true }, { env: { TAILHOOK_METRICS_PER_INBOX_LIMIT: "1" } });
  });
  afterAll(() => server.stop());

  it("labels by inbox id up to the limit; later inboxes share _other", async () => {
    const first = await server.createInbox();
    const second = await server.createInbox();
    expect((await post(first.ingestUrl, "{}")).status).toBe(200);
    expect((await post(second.ingestUrl, "[]")).status).toBe(200);
    expect((await post(second.ingestUrl, "[1]")).status).toBe(200);
    const text = await scrape(server);
    expect(sample(text, "tailhook_ingest_events_total", { inbox: first.id })).toBe(1);
    expect(sample(text, "tailhook_ingest_bytes_total", { inbox: first.id })).toBe(2);
    expect(sample(text, "tailhook_ingest_events_total", { inbox: "_other" })).toBe(2);
    expect(text).not.toContain(second.id);
    expect(promtool(text).status).toBe(0);
  });

  it("reads consumer lag at scrape time, in events, and clears it on ack", async () => {
    const inbox = await server.createInbox();
    for (let i = 0; i < 3; i++) expect((await post(inbox.ingestUrl, `{"n":${i}}`)).status).toBe(200);
    const created = await server.admin(`/api/inboxes/${inbox.id}/consumers/worker`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ from: "start" }),
    });
    expect(created.status).toBe(201);
    const labels = { inbox: inbox.id, consumer: "worker" };
    const lagging = await scrape(server);
    expect(sample(lagging, "tailhook_consumer_lag_events", labels)).toBe(3);
    expect(sample(lagging, "tailhook_consumer_lag_events_max")).toBe(3);
    expect(sample(lagging, "tailhook_consumers")).toBe(1);
    expect(sample(lagging, "tailhook_consumer_lag_seconds", labels)).toBeGreaterThanOrEqual(0);

    const stream = await fetch(`${inbox.streamUrl}?offset=-1&token=${inbox.token}`);
    const tail = stream.headers.get("stream-next-offset")!;
    const ack = await server.admin(`/api/inboxes/${inbox.id}/consumers/worker/ack`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ offset: tail }),
    });
    expect(ack.status).toBe(200);
    const caughtUp = await scrape(server);
    expect(sample(caughtUp, "tailhook_consumer_lag_events", labels)).toBe(0);
    expect(sample(caughtUp, "tailhook_consumer_lag_seconds", labels)).toBe(0);
    expect(sample(caughtUp, "tailhook_consumer_lag_seconds_max")).toBe(0);
  });
});

describe(`/metrics: tailhook_inbox_silent (${testBackend})`, () => {
  const patchSettings = (server: TestServer, id: string, settings: unknown) =>
    server.admin(`/api/inboxes/${id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings }),
    });

  it('without per-inbox labels counts the silent inboxes under inbox="_other", never naming one', async () => {
    const server = await startTestServer();
    try {
      expect(sample(await scrape(server), "tailhook_inbox_silent", { inbox: "_other" })).toBe(0);
      const quiet = await server.createInbox({ settings: { expectEvery: 1 } });
      const alsoQuiet = await server.createInbox({ settings: { expectEvery: 1 } });
      const patient = await server.createInbox({ settings: { expectEvery: 3600 } });
      await server.createInbox();
      let text = "";
      await waitUntil(
        async () => sample((text = await scrape(server)), "tailhook_inbox_silent", { inbox: "_other" }) === 2,
        "two silent inboxes",
      );
      for (const inbox of [quiet, alsoQuiet, patient]) expect(text).not.toContain(inbox.id);
      expect(promtool(text).status).toBe(0);
      // A longer expectEvery takes one out of the count at the next scrape.
      expect((await patchSettings(server, quiet.id, { expectEvery: 3600 })).status).toBe(200);
      expect(sample(await scrape(server), "tailhook_inbox_silent", { inbox: "_other" })).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it("with --metrics-per-inbox has a 0/1 series per watched inbox", async () => {
    const server = await startTestServer({ metricsPerInbox: true });
    try {
      const quiet = await server.createInbox({ settings: { expectEvery: 1 } });
      const patient = await server.createInbox({ settings: { expectEvery: 3600 } });
      const unwatched = await server.createInbox();
      let text = "";
      await waitUntil(
        async () => sample((text = await scrape(server)), "tailhook_inbox_silent", { inbox: quiet.id }) === 1,
        "the quiet inbox's series at 1",
      );
      expect(sample(text, "tailhook_inbox_silent", { inbox: patient.id })).toBe(0);
      expect(sample(text, "tailhook_inbox_silent", { inbox: unwatched.id })).toBeUndefined();
      expect(sample(text, "tailhook_inbox_silent", { inbox: "_other" })).toBe(0);
      expect(promtool(text).status).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

describe(`/metrics: retention and WebSocket readers (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
  });
  afterAll(() => server.stop());

  it("counts the events retention removed", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 1 } } });
    for (let i = 0; i < 4; i++) expect((await post(inbox.ingestUrl, `{"n":${i}}`)).status).toBe(200);
    let text = "";
    await waitUntil(
      async () => sample((text = await scrape(server)), "tailhook_retention_removed_total") === 3,
      "three removals in tailhook_retention_removed_total",
      15_000,
      () => `; last: ${sample(text, "tailhook_retention_removed_total")}`,
    );
  });

  it("shows an open WebSocket reader in the gauge, and counts the upgrade as 101 by its route once it closed", async () => {
    const inbox = await server.createInbox();
    const open = async () => sample(await scrape(server), "tailhook_open_readers", { transport: "websocket" });
    const socket = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/ws/inbox/${inbox.id}?offset=now&token=${inbox.token}`);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    await waitUntil(async () => (await open()) === 1, "the WebSocket reader in tailhook_open_readers");
    socket.close();
    await waitUntil(async () => (await open()) === 0, "the WebSocket reader gone from tailhook_open_readers");
    const route = { method: "GET", route: "/v1/ws/inbox/:id", status: "101" };
    await waitUntil(async () => sample(await scrape(server), "tailhook_http_requests_total", route) === 1, "the upgrade counted as 101");
  });
});

describe(`/metrics: long-poll and smee readers, SMTP messages (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ smtpPort: 0 });
  });
  afterAll(() => server.stop());
  const readers = async (transport: string) => sample(await scrape(server), "tailhook_open_readers", { transport });

  it("shows a waiting long-poll in the gauge until its answer", async () => {
    const inbox = await server.createInbox();
    const polling = fetch(`${inbox.streamUrl}?offset=now&live=long-poll&token=${inbox.token}`);
    await waitUntil(async () => (await readers("long-poll")) === 1, "the long-poll in tailhook_open_readers");
    expect((await post(inbox.ingestUrl, "{}")).status).toBe(200);
    expect((await polling).status).toBe(200);
    await waitUntil(async () => (await readers("long-poll")) === 0, "the long-poll gone from tailhook_open_readers");
  });

  it("shows a smee reader in the gauge until it goes away", async () => {
    const inbox = await server.createInbox();
    const controller = new AbortController();
    const response = await fetch(`${server.url}/smee/${inbox.id}?token=${inbox.token}`, { signal: controller.signal });
    expect(response.status).toBe(200);
    await waitUntil(async () => (await readers("smee")) === 1, "the smee reader in tailhook_open_readers");
    controller.abort();
    await waitUntil(async () => (await readers("smee")) === 0, "the smee reader gone from tailhook_open_readers");
  });

  it("counts an SMTP message by its reply code, and its bytes as ingested", async () => {
    const inbox = await server.createInbox();
    const before = await scrape(server);
    const raw = rawMessage({ From: "a@example.test", To: `${inbox.id}@example.test`, Subject: "hi" }, "hello\r\n");
    expect(await sendRaw(smtpTarget(server.smtpUrl!), { to: [`${inbox.id}@example.test`], raw })).toMatchObject({ ok: true, code: 250 });
    const after = await scrape(server);
    const delta = (name: string, labels: Labels) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    expect(delta("tailhook_smtp_messages_total", { code: "250" })).toBe(1);
    expect(delta("tailhook_ingest_events_total", { inbox: "_other" })).toBe(1);
    expect(delta("tailhook_ingest_bytes_total", { inbox: "_other" })).toBe(raw.length);
  });
});

describe(`--metrics-port (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    // The main port on ::1, so that the metrics listener's 127.0.0.1 is its own choice.
    server = await startTestServer({ host: "::1", metricsPort: 0 });
  });
  afterAll(() => server.stop());

  it("answers /metrics without a token, bound to 127.0.0.1 only; the main port still wants the token", async () => {
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(server.metricsUrl!).port);
    const response = await fetch(`${server.metricsUrl}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(sample(text, "tailhook_open_readers", { transport: "websocket" })).toBe(0);
    expect(promtool(text).status).toBe(0);
    expect((await fetch(`${server.metricsUrl}/api/inboxes`)).status).toBe(404);
    expect(await accepts("::1", port)).toBe(false);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
  });
});
