/*
 * `tailhook forward` and `tailhook replay` end to end, with real processes: a
 * `tailhook serve` child, CLI children, and a recording webhook target in this
 * process (see helpers/target.ts).
 *
 * The main case ingests a few hundred varied webhooks while the forwarder runs against
 * a target that answers 200, fails at random (503, 500, connection resets, a 429 with
 * Retry-After), goes down and comes back on the same port, and answers slowly; the
 * forwarder is SIGKILLed twice (once while the tailhook server is down and it sits on
 * the most delivered-but-unconfirmed events it allows) and the tailhook server is
 * restarted twice on the same port and data folder. Then it must drain, and the
 * checker proves: every event reached the target with its exact method, path, query,
 * headers and body bytes; first deliveries are in order; inside one forwarder process
 * nothing that got a 2xx is sent again and no event is passed before it got one; and
 * what a kill makes the next forwarder repeat is bounded by maxUnacked + 1 (101).
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import {
  cliEnv,
  createInbox,
  killAllChildren,
  runCli,
  sleep,
  spawnCli,
  startServerProcess,
  tempDir,
  type Child,
  type ServerProcess,
} from "./helpers/processes.js";
import { headerValues, Target, type Received } from "./helpers/target.js";
import { waitForReaders } from "./helpers/readers.js";

const MAX_UNACKED = 100;
const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;

const dirs: string[] = [];
const targets: Target[] = [];

afterEach(async () => {
  spawned.length = 0;
  await killAllChildren();
  for (const target of targets.splice(0)) await target.close();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------
// Sending webhooks with an exact header list

interface Webhook {
  tag: string;
  method: string;
  path: string;
  query: string;
  /** Exactly the headers we send besides Host and the framing header (order, case, duplicates). */
  headers: Array<[string, string]>;
  body: Buffer;
  chunked: boolean;
}

type SendOutcome = { kind: "acked"; seq: number; id: string } | { kind: "refused" } | { kind: "unknown"; error: string };

function sendWebhook(server: { url: string }, inboxId: string, hook: Webhook): Promise<SendOutcome> {
  const { hostname, port } = new URL(server.url);
  const raw = ["Host", `${hostname}:${port}`, ...hook.headers.flat()];
  if (hook.chunked) raw.push("Transfer-Encoding", "chunked");
  else if (hook.body.length > 0 || !["GET", "DELETE"].includes(hook.method)) raw.push("Content-Length", String(hook.body.length));
  const path = `/h/${inboxId}${hook.path}${hook.query ? `?${hook.query}` : ""}`;
  return new Promise((resolve) => {
    const req = request({ host: hostname, port, method: hook.method, path, headers: raw, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", (error) => resolve({ kind: "unknown", error: error.message }));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200) {
          const ack = JSON.parse(text) as { seq: number; id: string };
          resolve({ kind: "acked", seq: ack.seq, id: ack.id });
        } else if (res.statusCode === 503)
          resolve({ kind: "refused" }); // nothing stored
        else resolve({ kind: "unknown", error: `status ${res.statusCode}: ${text}` });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code === "ECONNREFUSED" ? { kind: "refused" } : { kind: "unknown", error: error.code ?? error.message }),
    );
    if (hook.chunked && hook.body.length > 1) {
      req.write(hook.body.subarray(0, hook.body.length >> 1));
      req.end(hook.body.subarray(hook.body.length >> 1));
    } else req.end(hook.body);
  });
}

const PATHS = ["", "/", "/orders", "/orders/42/items", "/a%20b/%C3%A9", "/dup//slash", "/trailing/", "/x.json"];
const QUERIES = ["", "x=1", "a=1&a=2&b=", "q=hello%20world&r=a+b", "flag", "utf=%E2%9C%93", "empty=&=v"];
const TEXT = ["a", "Z", " ", "\n", "{", '"', "é", "€", "中", "😀", "\u0000", "\ufeff"];

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

/** A random webhook: method, sub-path, query, body (binary, text, JSON, empty) and an awkward header list. */
function randomWebhook(n: number): Webhook {
  const tag = `t${n}-${randomBytes(4).toString("hex")}`;
  const method = pick(["POST", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "GET"]);
  const withBody = method !== "GET" && method !== "DELETE";
  let body = Buffer.alloc(0);
  let contentType = "application/json";
  const kind = Math.random();
  if (withBody && kind < 0.35) {
    body = randomBytes(Math.floor(Math.random() * 3000));
    contentType = "application/octet-stream";
  } else if (withBody && kind < 0.65) {
    let text = "";
    const size = Math.floor(Math.random() * 1500);
    while (Buffer.byteLength(text) < size) text += pick(TEXT);
    body = Buffer.from(text, "utf8");
    contentType = "text/plain; charset=utf-8";
  } else if (withBody && kind < 0.95) {
    body = Buffer.from(JSON.stringify({ n, tag, nested: { ok: true, list: [1, 2, 3] } }));
  }
  const headers: Array<[string, string]> = [];
  if (withBody) headers.push(["Content-Type", contentType]);
  headers.push(["X-Test-Tag", tag], ["X-Dup", "one"], ["x-dup", "two"], ["X-Mixed-CASE", `v${n}`]);
  headers.push(["X-Signature", `sha256=${randomBytes(16).toString("hex")}`]);
  if (n % 5 === 0) headers.push(["X-Latin1", "caf\u00e9 na\u00efve"]);
  if (n % 7 === 0) {
    // Hop-by-hop headers, including one named by Connection, must not be forwarded...
    headers.push(["Connection", "keep-alive, X-Hop-Secret"], ["X-Hop-Secret", "drop me"], ["Keep-Alive", "timeout=5"]);
    headers.push(["Proxy-Authorization", "Basic Zm9vOmJhcg=="], ["TE", "trailers"]);
  }
  // ...and a sender cannot spoof the forwarder's own headers.
  if (n % 11 === 0) headers.push(["X-Tailhook-Seq", "999999"], ["x-tailhook-attempt", "77"]);
  headers.push(["User-Agent", "tailhook-forward-test/1"]);
  return { tag, method, path: pick(PATHS), query: pick(QUERIES), headers, body, chunked: withBody && n % 9 === 0 };
}

// ---------------------------------------------------------------------------------
// What a delivery must look like

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
]);

/** The headers a target must get for a webhook, in order, minus hop-by-hop ones, Host and framing. */
function expectedHeaders(hook: Webhook): Array<[string, string]> {
  const named = new Set(
    hook.headers
      .filter(([name]) => name.toLowerCase() === "connection")
      .flatMap(([, value]) => value.split(",").map((token) => token.trim().toLowerCase())),
  );
  return hook.headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !named.has(lower) && !lower.startsWith("x-tailhook-");
  });
}

function deliveredHeaders(received: Received): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < received.rawHeaders.length; i += 2) {
    const name = received.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower.startsWith("x-tailhook-")) continue;
    pairs.push([name, received.rawHeaders[i + 1]!]);
  }
  return pairs;
}

/** Checks one delivery of event `seq` (ingested as `hook`, acknowledged with `id`) against the original. */
function checkDelivery(r: Received, seq: number, id: string, hook: Webhook, inboxId: string, targetHost: string, base = "/base"): void {
  const what = `delivery #${r.index} of event ${seq} (${hook.tag})`;
  expect(r.method, what).toBe(hook.method);
  expect(r.url, what).toBe(`${base}${hook.path}${hook.query ? `?${hook.query}` : ""}`);
  expect(r.body.equals(hook.body), `${what}: body bytes`).toBe(true);
  expect(deliveredHeaders(r), `${what}: headers`).toEqual(expectedHeaders(hook));
  expect(headerValues(r.rawHeaders, "host"), what).toEqual([targetHost]);
  expect(headerValues(r.rawHeaders, "x-tailhook-inbox"), what).toEqual([inboxId]);
  expect(headerValues(r.rawHeaders, "x-tailhook-seq"), what).toEqual([String(seq)]);
  expect(headerValues(r.rawHeaders, "x-tailhook-event-id"), what).toEqual([id]);
  const attempts = headerValues(r.rawHeaders, "x-tailhook-attempt");
  expect(attempts, what).toHaveLength(1);
  expect(Number(attempts[0]), what).toBeGreaterThanOrEqual(1);
  const lengths = headerValues(r.rawHeaders, "content-length");
  if (hook.body.length > 0) expect(lengths, what).toEqual([String(hook.body.length)]);
  expect(headerValues(r.rawHeaders, "transfer-encoding"), what).toEqual([]);
}

/** `#seq  METHOD  /path?query  STATUS  N ms[  note]` */
const DELIVERY_LINE = /^#(\d+) {2}([A-Z]+) {2}(\/\S*) {2}(\d{3}|error \S.*?) {2}(\d+) ms(?: {2}(.+))?$/;

function parseLines(lines: string[]): Array<{ seq: number; method: string; path: string; result: string; note: string | undefined }> {
  return lines.map((line) => {
    const match = DELIVERY_LINE.exec(line);
    expect(match, `forward output line: ${JSON.stringify(line)}`).not.toBeNull();
    return { seq: Number(match![1]), method: match![2]!, path: match![3]!, result: match![4]!, note: match![6] };
  });
}

// ---------------------------------------------------------------------------------
// Plumbing

interface ConsumerView {
  committedSeq: number;
  lag: { events: number; lostEvents: number; seconds: number; oldestUnackedAt: string | null; oldestUnackedAgeSeconds: number | null };
}

async function consumerOf(
  server: { url: string },
  inbox: { id: string; token: string },
  name = "forward",
): Promise<ConsumerView | undefined> {
  const response = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers/${name}`, {
    headers: { authorization: `Bearer ${inbox.token}` },
  });
  if (response.status === 404) return undefined;
  expect(response.status).toBe(200);
  return (await response.json()) as ConsumerView;
}

/** CLI children of the current test, so a timeout can show what they printed. */
const spawned: Array<{ name: string; child: Child }> = [];

function childrenOutput(): string {
  return spawned
    .map(
      ({ name, child }) =>
        `\n--- ${name} (${child.running ? "running" : "exited"}) stdout:\n${child.stdout.text.slice(-1500)}\n--- stderr:\n${child.stderr.text.slice(-1500)}`,
    )
    .join("");
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000, every = 25): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await condition())) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${childrenOutput()}`);
    },
    { timeout: timeoutMs, interval: every },
  );
}

async function startServer(options: { dataDir?: string; port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? tempDir("tailhook-forward-data-");
  if (!dirs.includes(dataDir)) dirs.push(dataDir);
  return startServerProcess({ dataDir, port: options.port, env: options.env, args: ["--long-poll-timeout", "5000"] });
}

function cli(extra: NodeJS.ProcessEnv = {}) {
  const env = cliEnv(extra);
  dirs.push(env.HOME);
  return env;
}

function startForwarder(server: { url: string }, inbox: { id: string; token: string }, target: Target, ...flags: string[]): Child {
  const child = spawnCli(
    ["--server", server.url, "--token", inbox.token, "forward", inbox.id, "--to", `${target.url}/base`, "--timeout", "5000", ...flags],
    cli(),
  );
  spawned.push({ name: `forwarder ${spawned.length + 1}`, child });
  return child;
}

async function newTarget(): Promise<Target> {
  const target = await Target.start();
  targets.push(target);
  return target;
}

/** Ingests simple POSTs `/<name>` with body `body <name>`, one after another. */
async function ingestSimple(
  server: ServerProcess,
  inboxId: string,
  names: string[],
): Promise<Array<{ seq: number; id: string; hook: Webhook }>> {
  const acked = [];
  for (const name of names) {
    const hook: Webhook = {
      tag: name,
      method: "POST",
      path: `/${name}`,
      query: "",
      headers: [
        ["Content-Type", "text/plain"],
        ["X-Test-Tag", name],
      ],
      body: Buffer.from(`body ${name}`),
      chunked: false,
    };
    const outcome = await sendWebhook(server, inboxId, hook);
    if (outcome.kind !== "acked") throw new Error(`ingest of ${name}: ${JSON.stringify(outcome)}`);
    acked.push({ seq: outcome.seq, id: outcome.id, hook });
  }
  return acked;
}

// ---------------------------------------------------------------------------------

describe("forward under failures", () => {
  it("delivers every event at least once, exactly as received, in order, across random target failures, target downtime, two forwarder SIGKILLs and two server restarts", async () => {
    const started = Date.now();
    const log = (message: string) => timeline.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${message}`);
    const timeline: string[] = [];

    const dataDir = tempDir("tailhook-forward-main-");
    dirs.push(dataDir);
    let server = await startServer({ dataDir });
    const port = server.port;
    const inbox = await createInbox(server);
    const target = await newTarget();
    const targetHost = `127.0.0.1:${target.port}`;

    // The producer: paced webhooks, or a burst as fast as the server takes them.
    const sent = new Map<string, Webhook>();
    const acked: Array<{ seq: number; id: string; tag: string }> = [];
    const unknown: string[] = [];
    const producer = { running: true, burst: 0, sent: 0, refused: 0 };
    const produced = (async () => {
      for (let n = 1; producer.running || producer.burst > 0; n++) {
        const hook = randomWebhook(n);
        sent.set(hook.tag, hook);
        for (;;) {
          const outcome = await sendWebhook(server, inbox.id, hook);
          if (outcome.kind === "acked") {
            acked.push({ seq: outcome.seq, id: outcome.id, tag: hook.tag });
            break;
          }
          // Refused (server down or draining): not stored, send again. Unknown: maybe
          // stored; sending again may store it twice, which the checker allows.
          if (outcome.kind === "unknown") unknown.push(`${hook.tag}: ${outcome.error}`);
          producer.refused++;
          // Pacing of a retry against a server that is down: time is the input here.
          await sleep(100);
        }
        producer.sent++;
        if (producer.burst > 0) producer.burst--;
        // The producer's pace (webhooks arrive over time, not all at once): time is the input.
        else await sleep(40 + Math.random() * 60);
      }
    })();

    const forwarders: Child[] = [];
    const spawnGeneration = () => {
      target.generation = forwarders.length + 1;
      forwarders.push(startForwarder(server, inbox, target));
      log(`forwarder #${target.generation} started`);
    };
    const killForwarder = async () => {
      const current = forwarders.at(-1)!;
      const exit = await current.kill("SIGKILL");
      expect(exit.signal).toBe("SIGKILL");
      log(`forwarder #${forwarders.length} SIGKILLed`);
    };
    // Each phase lasts until the system has visibly gone through it, not for a set time.
    const untilMore = async (what: string, count: () => number, more: number) => {
      const from = count();
      await until(what, () => count() >= from + more, 30_000);
    };
    const failedAnswers = (generation: number) => target.received.filter((r) => r.generation === generation && r.answer !== 200).length;
    const deliveryErrors = (forwarder: Child) => forwarder.stdout.lines.filter((line) => / error .*retrying in /.test(line)).length;
    const serverRefused = () => untilMore("the producer to find the server down", () => producer.refused, 1);
    const restartServer = async (beforeStart: () => Promise<void> = serverRefused) => {
      const exit = await server.kill("SIGTERM");
      expect(exit).toEqual({ code: 0, signal: null });
      log("tailhook server stopped (SIGTERM)");
      await beforeStart();
      server = await startServer({ dataDir, port });
      expect(server.port).toBe(port);
      log("tailhook server started again on the same port");
    };
    let blockedAfterStop = 0;
    const twoHundreds = (generation: number) => target.received.filter((r) => r.generation === generation && r.answer === 200);

    try {
      spawnGeneration();
      await untilMore("forwarder #1 to deliver", () => twoHundreds(1).length, 10);

      target.mode = "flaky";
      log("target flaky");
      await untilMore("forwarder #1 to meet failures", () => failedAnswers(1), 3);
      await killForwarder();
      spawnGeneration();
      await untilMore("forwarder #2 to deliver", () => twoHundreds(2).length, 5);

      // Server restart A: forwarder #2 rides it out.
      await restartServer();
      await untilMore("forwarder #2 to deliver after restart A", () => twoHundreds(2).length, 10);

      // The target goes down for a few seconds. The forwarder gets stuck on a paced
      // event first, then a burst arrives, which it will read as one page later.
      await target.down();
      log("target down");
      await untilMore("forwarder #2 to fail against the down target", () => deliveryErrors(forwarders.at(-1)!), 1);
      const burstFromSeq = (acked.at(-1)?.seq ?? 0) + 2;
      producer.burst = 140;
      await until("the burst", () => producer.burst === 0, 20_000);
      const lagged = await consumerOf(server, inbox);
      log(`burst done at #${acked.at(-1)!.seq}; lag ${lagged?.lag.events}`);
      expect(lagged).toBeDefined();
      expect(lagged!.lag.events).toBeGreaterThan(0);
      expect(lagged!.lag.events).toBeGreaterThanOrEqual(140);
      expect(lagged!.lag.oldestUnackedAgeSeconds).not.toBeNull();
      await untilMore("forwarder #2 to retry against the down target", () => deliveryErrors(forwarders.at(-1)!), 1);
      // Back, answering quickly what came before the burst, then slowly (300 ms).
      target.mode = (r) => (r.seq! < burstFromSeq ? 200 : { status: 200, delayMs: 300 });
      await target.up();
      log("target up; slow from the burst on");
      await until("forwarder #2 into the burst", () => twoHundreds(2).some((r) => r.seq! > burstFromSeq), 15_000);

      // Server restart B: while it is down, forwarder #2 keeps delivering from memory
      // with every commit failing, until it holds maxUnacked + 1 unconfirmed events; then
      // it is SIGKILLed and #3 starts before the server is back.
      await restartServer(async () => {
        const stoppedAt = Date.now();
        target.mode = "ok";
        let last = -1;
        // "Stopped" is "nothing new for 600 ms": quiet is only seen over time.
        await until(
          "forwarder #2 to stop delivering",
          async () => {
            const count = target.received.length;
            const quiet = count === last;
            last = count;
            return quiet;
          },
          8_000,
          600,
        );
        blockedAfterStop = new Set(
          twoHundreds(2)
            .filter((r) => r.at >= stoppedAt)
            .map((r) => r.seq),
        ).size;
        log(`forwarder #2 delivered ${blockedAfterStop} events while the server was down, then waited`);
        await killForwarder();
        spawnGeneration();
        const third = forwarders.at(-1)!;
        await until("forwarder #3 to find the server down", () => third.stderr.lines.length > 0);
      });
      expect(blockedAfterStop).toBeLessThanOrEqual(MAX_UNACKED + 1);
      expect(blockedAfterStop).toBeGreaterThan(50); // the backlog really was delivered from memory

      await untilMore("forwarder #3 to deliver", () => twoHundreds(3).length, 10);
      target.mode = "flaky";
      target.pending429 = true;
      log("target flaky, with one 429 Retry-After: 1");
      await until("the 429 to be answered", () => !target.pending429);
      await untilMore("forwarder #3 to meet failures", () => failedAnswers(3), 3);

      producer.running = false;
      await produced;
      target.mode = "ok";
      log(`producer stopped after ${producer.sent} webhooks; draining`);

      const lastSeq = Math.max(...acked.map((a) => a.seq));
      await until(
        "the forwarder to drain",
        async () => {
          if (!twoHundreds(3).some((r) => r.seq === lastSeq)) return false;
          const consumer = await consumerOf(server, inbox);
          return consumer?.committedSeq === lastSeq;
        },
        25_000,
        100,
      );
      log("drained");
      const drained = (await consumerOf(server, inbox))!;
      expect(drained.committedSeq).toBe(lastSeq);
      expect(drained.lag).toEqual({
        events: 0,
        lostEvents: 0,
        seconds: 0,
        oldestUnackedAt: null,
        oldestUnackedAgeSeconds: null,
        behindHorizon: false,
        horizonOffset: offset(0),
      });

      // A clean stop: SIGTERM, exit 0.
      const last = forwarders.at(-1)!;
      expect(await last.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    } finally {
      producer.running = false;
      producer.burst = 0;
      await produced.catch(() => undefined);
      await killAllChildren();
      await target.down();
      process.stdout.write(`forward test timeline:\n  ${timeline.join("\n  ")}\n`);
    }

    // ------------------------------------------------------------- the checker
    // The stream as the server holds it: every event the forwarder had to deliver.
    const check = await startServer({ dataDir, port });
    const stream: Array<{ seq: number; id: string; headers: Array<[string, string]> }> = [];
    for (let from = "-1"; ;) {
      const response = await fetch(`${check.url}/v1/stream/inbox/${inbox.id}?offset=${from}`, {
        headers: { authorization: `Bearer ${inbox.token}` },
      });
      stream.push(...((await response.json()) as typeof stream));
      from = response.headers.get("stream-next-offset")!;
      if (response.headers.get("stream-up-to-date") === "true") break;
    }
    const lastSeq = stream.at(-1)!.seq;
    expect(stream.map((e) => e.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    // Every acknowledged webhook is in the stream at the seq its ack named.
    for (const ack of acked) expect(stream[ack.seq - 1]!.id).toBe(ack.id);
    expect(acked.length + unknown.length).toBeGreaterThanOrEqual(lastSeq);

    const deliveries = target.received;
    for (const r of deliveries) expect(r.seq, `request #${r.index} ${r.url} carries X-Tailhook-Seq`).toBeDefined();

    // 1. Every event reached the target, exactly as it was received, on every attempt.
    for (const event of stream) {
      const tag = event.headers.find(([name]) => name === "X-Test-Tag")![1];
      const hook = sent.get(tag)!;
      expect(hook, `event ${event.seq}`).toBeDefined();
      const forEvent = deliveries.filter((r) => r.seq === event.seq);
      expect(
        forEvent.some((r) => r.answer === 200),
        `event ${event.seq} was delivered with a 2xx`,
      ).toBe(true);
      for (const r of forEvent) checkDelivery(r, event.seq, event.id, hook, inbox.id, targetHost);
    }
    expect(deliveries.every((r) => r.seq! >= 1 && r.seq! <= lastSeq)).toBe(true);

    // 2. First deliveries are in order.
    const firsts: number[] = [];
    const seen = new Set<number>();
    for (const r of deliveries) {
      if (!seen.has(r.seq!)) firsts.push(r.seq!);
      seen.add(r.seq!);
    }
    expect(firsts).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));

    // 3. Inside one forwarder process: nothing is passed before it got a 2xx, and
    //    nothing that got a 2xx is sent again (also across the server restart A).
    const generations = [1, 2, 3];
    for (const generation of generations) {
      const mine = deliveries.filter((r) => r.generation === generation);
      expect(mine.length, `forwarder #${generation} delivered something`).toBeGreaterThan(0);
      for (let i = 1; i < mine.length; i++) {
        const [previous, current] = [mine[i - 1]!, mine[i]!];
        const where = `forwarder #${generation}: request for ${current.seq} after ${previous.seq} (answered ${previous.answer})`;
        if (previous.answer === 200) expect(current.seq, where).toBe(previous.seq! + 1);
        else expect(current.seq, where).toBe(previous.seq);
        if (current.seq === previous.seq) expect(current.attempt!, where).toBeGreaterThan(previous.attempt!);
      }
    }

    // 4. What each kill made the next forwarder repeat: events that had a 2xx before
    //    the kill and were delivered again after it — at most maxUnacked + 1.
    const duplicates = [1, 2].map((killed) => {
      const confirmedBefore = new Set(deliveries.filter((r) => r.generation <= killed && r.answer === 200).map((r) => r.seq));
      const repeated = deliveries.filter((r) => r.generation === killed + 1 && confirmedBefore.has(r.seq));
      return { kill: killed, events: new Set(repeated.map((r) => r.seq)).size, requests: repeated.length };
    });
    for (const { events } of duplicates) expect(events).toBeLessThanOrEqual(MAX_UNACKED + 1);
    // Everything forwarder #2 delivered while the server was down was unconfirmed, so
    // the second kill repeats at least that much.
    expect(duplicates[1]!.events).toBeGreaterThanOrEqual(blockedAfterStop);

    // 5. The 429 with Retry-After: 1 was honoured.
    const throttled = deliveries.find((r) => r.answer === 429);
    expect(throttled).toBeDefined();
    const retried = deliveries.find((r) => r.index > throttled!.index && r.generation === throttled!.generation);
    expect(retried?.seq).toBe(throttled!.seq);
    expect(retried!.at - throttled!.at).toBeGreaterThanOrEqual(950);

    // 6. The forwarders' output: one well-formed line per attempt; notices on stderr only.
    for (const [index, child] of forwarders.entries()) {
      const lines = parseLines(child.stdout.lines);
      for (const line of lines) {
        if (line.result === "200") expect(line.note === undefined || /^\(attempt \d+\)$/.test(line.note), line.note).toBe(true);
        else expect(line.note, JSON.stringify(line)).toMatch(/^retrying in \d+\.\d s \(attempt \d+\)$/);
      }
      for (const line of child.stderr.lines) expect(line, `forwarder #${index + 1} stderr`).toMatch(/^tailhook: /);
    }
    const finalLines = parseLines(forwarders[2]!.stdout.lines);
    expect(finalLines.at(-1)).toMatchObject({ seq: lastSeq, result: "200" });
    expect(parseLines(forwarders.flatMap((f) => f.stdout.lines)).filter((l) => l.result === "429")).toHaveLength(1);

    const stats = {
      seconds: Math.round((Date.now() - started) / 100) / 10,
      events: lastSeq,
      requests: deliveries.length,
      answers: Object.fromEntries(
        [200, 429, 500, 503, "reset"].map((answer) => [answer, deliveries.filter((r) => r.answer === answer).length]),
      ),
      duplicatesPerKill: duplicates,
      deliveredWhileServerDown: blockedAfterStop,
      unknownIngests: unknown.length,
    };
    process.stdout.write(`forward test stats: ${JSON.stringify(stats)}\n`);
  }, 60_000);
});

describe("forward's 4xx policy", () => {
  function rejectSeq(seq: number, status = 400) {
    let fixed = false;
    return {
      handler: (r: Received) => (r.seq === seq && !fixed ? status : 200),
      fix: () => {
        fixed = true;
      },
    };
  }

  it("--on-4xx skip: skips the refused event once and goes on; the consumer moves past it", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    target.mode = rejectSeq(2).handler;
    const events = await ingestSimple(server, inbox.id, ["one", "two", "three"]);
    const forwarder = startForwarder(server, inbox, target, "--on-4xx", "skip", "--consumer", "skipper");
    await until("event 3 delivered and committed", async () => (await consumerOf(server, inbox, "skipper"))?.committedSeq === 3);
    expect(forwarder.running).toBe(true);
    // Its exit is the sentinel: all its output is read by then, and it delivers nothing more.
    expect(await forwarder.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(target.received.map((r) => [r.seq, r.answer])).toEqual([
      [1, 200],
      [2, 400],
      [3, 200],
    ]);
    target.received.forEach((r, i) =>
      checkDelivery(r, events[i]!.seq, events[i]!.id, events[i]!.hook, inbox.id, `127.0.0.1:${target.port}`),
    );
    const lines = parseLines(forwarder.stdout.lines);
    expect(lines.map((l) => [l.seq, l.method, l.path, l.result, l.note])).toEqual([
      [1, "POST", "/one", "200", undefined],
      [2, "POST", "/two", "400", "skipped"],
      [3, "POST", "/three", "200", undefined],
    ]);
    expect((await consumerOf(server, inbox, "skipper"))!.lag.events).toBe(0);
    expect(await consumerOf(server, inbox)).toBeUndefined(); // --consumer named the only one used
  });

  it("--on-4xx stop: exits 1 with one line on stderr, leaving the consumer before the refused event", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    target.mode = rejectSeq(2, 422).handler;
    await ingestSimple(server, inbox.id, ["one", "two", "three"]);
    const forwarder = startForwarder(server, inbox, target, "--on-4xx", "stop");
    const exit = await Promise.race([forwarder.exited, sleep(15_000).then(() => "still running" as const)]);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(forwarder.stderr.lines).toEqual(["tailhook: stopped: the target answered 422 to event #2 (--on-4xx stop)"]);
    expect(target.received.map((r) => [r.seq, r.answer])).toEqual([
      [1, 200],
      [2, 422],
    ]);
    expect(parseLines(forwarder.stdout.lines).map((l) => [l.seq, l.result, l.note])).toEqual([
      [1, "200", undefined],
      [2, "422", "stopping"],
    ]);
    expect(await consumerOf(server, inbox)).toMatchObject({ committedSeq: 1, lag: { events: 2 } });
  });

  it("by default retries a 4xx with backoff until the target is fixed, holding back later events", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    const rule = rejectSeq(2, 404);
    target.mode = rule.handler;
    const events = await ingestSimple(server, inbox.id, ["one", "two", "three"]);
    const forwarder = startForwarder(server, inbox, target);
    await until("three refused attempts", () => target.forSeq(2).length >= 3, 15_000, 10);
    rule.fix();
    await until("event 3 committed", async () => (await consumerOf(server, inbox))?.committedSeq === 3, 15_000, 50);

    const attempts = target.forSeq(2);
    expect(attempts.map((r) => r.answer)).toEqual([...Array(attempts.length - 1).fill(404), 200]);
    expect(attempts.map((r) => r.attempt)).toEqual(attempts.map((_, i) => i + 1));
    // Backoff: the attempts are spread out, not hammered.
    expect(attempts.at(-1)!.at - attempts[0]!.at).toBeGreaterThanOrEqual(100 * (attempts.length - 1));
    // Nothing after event 2 went out before it was delivered.
    expect(target.received.map((r) => r.seq)).toEqual([1, ...attempts.map(() => 2), 3]);
    attempts.forEach((r) => checkDelivery(r, 2, events[1]!.id, events[1]!.hook, inbox.id, `127.0.0.1:${target.port}`));
    const lines = parseLines(forwarder.stdout.lines).filter((l) => l.seq === 2);
    expect(lines.slice(0, -1).every((l) => l.result === "404" && /^retrying in \d+\.\d s \(attempt \d+\)$/.test(l.note ?? ""))).toBe(true);
    expect(lines.at(-1)).toMatchObject({ result: "200", note: `(attempt ${attempts.length})` });
  });

  it("--timeout: an attempt that gets no answer in time is retried", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    target.mode = (r) => (r.attempt === 1 ? { status: 200, delayMs: 3000 } : 200);
    await ingestSimple(server, inbox.id, ["one"]);
    const forwarder = spawnCli(
      ["--server", server.url, "--token", inbox.token, "forward", inbox.id, "--to", `${target.url}/base`, "--timeout", "300"],
      cli(),
    );
    spawned.push({ name: "forwarder --timeout 300", child: forwarder });
    await until("event 1 committed", async () => (await consumerOf(server, inbox))?.committedSeq === 1, 15_000, 50);
    expect(target.forSeq(1).map((r) => r.attempt)).toEqual([1, 2]);
    const lines = parseLines(forwarder.stdout.lines);
    expect(lines[0]).toMatchObject({ seq: 1, result: "error no answer within 300 ms" });
    expect(Number(/(\d+) ms/.exec(forwarder.stdout.lines[0]!.split("  ")[4]!)![1])).toBeGreaterThanOrEqual(290);
    expect(lines[1]).toMatchObject({ seq: 1, result: "200", note: "(attempt 2)" });
  });
});

describe("forward, stopping and starting", () => {
  it("on SIGTERM commits what it delivered: a new forwarder repeats nothing and goes on with new events", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    await ingestSimple(server, inbox.id, ["a", "b", "c", "d", "e"]);
    const first = startForwarder(server, inbox, target);
    await until("5 deliveries", () => target.received.length >= 5);
    expect(await first.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect((await consumerOf(server, inbox))!.committedSeq).toBe(5);

    const second = startForwarder(server, inbox, target);
    // Caught up and waiting in a long-poll: "f" reaches it live.
    await waitForReaders(server, "long-poll");
    await ingestSimple(server, inbox.id, ["f"]);
    await until("event 6", () => target.received.length >= 6);
    expect(second.running).toBe(true);
    // Its exit is the sentinel: all its output is read by then, and it delivers nothing more.
    expect(await second.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(target.received.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(second.stdout.lines).toHaveLength(1);
  });

  it("when retention removed events before delivery, warns once on stderr and goes on from the earliest retained event", async () => {
    const server = await startServer({ env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
    const inbox = await createInbox(server);
    const patch = await fetch(`${server.url}/api/inboxes/${inbox.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ settings: { retention: { maxEvents: 3 } } }),
    });
    expect(patch.status).toBe(200);
    const put = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers/forward`, {
      method: "PUT",
      headers: { authorization: `Bearer ${inbox.token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(put.status).toBe(201);
    const events = await ingestSimple(server, inbox.id, ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10"]);
    await until("retention to remove 1..7", async () => (await consumerOf(server, inbox))?.lag.lostEvents === 7);
    expect(await consumerOf(server, inbox)).toMatchObject({ committedSeq: 0, lag: { events: 3, lostEvents: 7 } });

    const target = await newTarget();
    const forwarder = startForwarder(server, inbox, target);
    await until("event 10 committed", async () => (await consumerOf(server, inbox))?.committedSeq === 10);
    expect(target.received.map((r) => [r.seq, r.answer])).toEqual([
      [8, 200],
      [9, 200],
      [10, 200],
    ]);
    target.received.forEach((r, i) =>
      checkDelivery(r, 8 + i, events[7 + i]!.id, events[7 + i]!.hook, inbox.id, `127.0.0.1:${target.port}`),
    );
    expect(await consumerOf(server, inbox)).toMatchObject({ lag: { events: 0, lostEvents: 0 } });
    // Its exit is the sentinel: all of its stderr is read by then.
    expect(await forwarder.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(forwarder.stderr.lines).toHaveLength(1);
    expect(forwarder.stderr.lines[0]).toMatch(/^tailhook: warning: .*removed by retention/);
  });

  it("delivers the path and query exactly as the sender wrote them", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    // Characters a URL parser would percent-encode, but that senders do use unencoded
    // (and that signatures over the URL cover).
    const hooks: Webhook[] = [
      ["/cb/it's", "where=name%20eq%20'x'"],
      ["/t/{tenant}/", 'tpl={id}&json="v"'],
      ["/plain", "sig=a|b^c"],
    ].map(([path, query], n) => ({
      tag: `exact-${n}`,
      method: "POST",
      path: path!,
      query: query!,
      headers: [["X-Test-Tag", `exact-${n}`]],
      body: Buffer.from(`exact ${n}`),
      chunked: false,
    }));
    for (const hook of hooks) expect((await sendWebhook(server, inbox.id, hook)).kind).toBe("acked");
    startForwarder(server, inbox, target);
    await until("3 deliveries", () => target.received.filter((r) => r.answer === 200).length >= 3);
    expect(target.received.map((r) => r.url)).toEqual(hooks.map((h) => `/base${h.path}?${h.query}`));
  });
});

describe("replay", () => {
  it("replay 2..4 redelivers exactly those events, in order, and does not move the consumer", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    const events = await ingestSimple(server, inbox.id, ["one", "two", "three", "four", "five"]);
    const put = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers/forward`, {
      method: "PUT",
      headers: { authorization: `Bearer ${inbox.token}`, "content-type": "application/json" },
      body: JSON.stringify({ from: offset(1) }),
    });
    expect(put.status).toBe(201);
    const env = cli();
    const base = ["--server", server.url, "--token", inbox.token, "replay", inbox.id];

    const result = await runCli([...base, "2..4", "--to", `${target.url}/base`], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    expect(target.received.map((r) => [r.seq, r.attempt, r.answer])).toEqual([
      [2, 1, 200],
      [3, 1, 200],
      [4, 1, 200],
    ]);
    target.received.forEach((r, i) =>
      checkDelivery(r, events[i + 1]!.seq, events[i + 1]!.id, events[i + 1]!.hook, inbox.id, `127.0.0.1:${target.port}`),
    );
    expect(parseLines(result.lines).map((l) => [l.seq, l.method, l.path, l.result, l.note])).toEqual([
      [2, "POST", "/two", "200", undefined],
      [3, "POST", "/three", "200", undefined],
      [4, "POST", "/four", "200", undefined],
    ]);

    // One event, and a range reaching past the end (clipped to the last event).
    expect((await runCli([...base, "5", "--to", `${target.url}/base`], env)).code).toBe(0);
    expect((await runCli([...base, "4..99", "--to", `${target.url}/base`], env)).code).toBe(0);
    expect(target.received.map((r) => r.seq)).toEqual([2, 3, 4, 5, 4, 5]);
    // A target URL with its own query keeps it, the event's query coming after.
    expect((await runCli([...base, "1", "--to", `${target.url}/in/?key=k1`], env)).code).toBe(0);
    expect(target.received.at(-1)!.url).toBe("/in/one?key=k1");
    target.received.pop();

    // The consumer did not move, and replay made no consumer of its own.
    expect(await consumerOf(server, inbox)).toMatchObject({ committedSeq: 1, lag: { events: 4 } });
    const list = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers`, { headers: { authorization: `Bearer ${inbox.token}` } });
    expect(((await list.json()) as { consumers: Array<{ name: string }> }).consumers.map((c) => c.name)).toEqual(["forward"]);

    // Nothing there (exit 1), or an empty or malformed range (a usage error, exit 2): one line on stderr, nothing sent.
    for (const [range, exitCode] of [
      ["9", 1],
      ["4..2", 2],
      ["x", 2],
    ] as const) {
      const refused = await runCli([...base, range, "--to", `${target.url}/base`], env);
      expect(refused.code, range).toBe(exitCode);
      expect(refused.errorLines, range).toHaveLength(1);
      expect(refused.errorLines[0], range).toMatch(/^tailhook: /);
    }
    expect(target.received).toHaveLength(6);
  });

  it("inbox ids never start with '-' or '_', so the CLI never reads one as an option", async () => {
    const server = await startServer();
    const ids: string[] = [];
    for (let created = 0; created < 300; created++) ids.push((await createInbox(server)).id);
    expect(ids.filter((id) => /^[-_]/.test(id))).toEqual([]);
    // 300 random base64url ids would include about 9 such ids without the rule.
    expect(new Set(ids).size).toBe(300);
  });

  it("replay stops at a 4xx by default, exiting 1", async () => {
    const server = await startServer();
    const inbox = await createInbox(server);
    const target = await newTarget();
    target.mode = (r) => (r.seq === 2 ? 400 : 200);
    await ingestSimple(server, inbox.id, ["one", "two", "three"]);
    const result = await runCli(
      ["--server", server.url, "--token", inbox.token, "replay", inbox.id, "1..3", "--to", `${target.url}/base`],
      cli(),
    );
    expect(result.code).toBe(1);
    expect(result.errorLines).toEqual(["tailhook: stopped: the target answered 400 to event #2"]);
    expect(target.received.map((r) => r.seq)).toEqual([1, 2]);
  });
});
