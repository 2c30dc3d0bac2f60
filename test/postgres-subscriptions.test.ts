/*
 * Durable Streams subscriptions with two `tailhook serve --open --db` processes on one
 * PostgreSQL schema (PostgreSQL only: this file runs in the "postgres" project):
 * - exactly one process leads and runs the subscription service; the other answers
 *   the __ds routes with 503 NOT_LEADER and Retry-After, but publishes the JWK Set;
 * - appends made through the follower wake the leader's webhook subscription, and
 *   each wake is delivered exactly once (no second delivery from the follower);
 * - when the leader's lock session is ended under it (pg_terminate_backend; its client
 *   reconnects silently), it notices, stops serving, and one process leads again;
 * - when the leader is SIGKILLed, the follower takes over within seconds: its __ds
 *   routes answer, and a new append is delivered by it.
 * The webhook receiver is a real node:http server; the callback_url in each delivery
 * names the process that sent it.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import postgres from "postgres";
import { afterAll, describe, expect, it, vi } from "vitest";
import { pgTestUrl } from "./helpers/pg.js";
import { killAllChildren, sleep, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";

const schema = `t_subs_${process.pid}_${randomBytes(4).toString("hex")}`;
let receiver: Server | undefined;

afterAll(async () => {
  await killAllChildren();
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  const sql = postgres(pgTestUrl(), { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await sql.end({ timeout: 2 });
  }
});

interface Delivery {
  wakeId: string;
  /** The origin of the process that sent it (from its callback_url). */
  sender: string;
  tailOffset: string | undefined;
}

/** Answers every delivery 200 { done: true }, which ends the wake at once. */
async function startReceiver(): Promise<{ url: string; deliveries: Delivery[] }> {
  const deliveries: Delivery[] = [];
  receiver = createServer((request, response) => {
    let raw = "";
    request.on("data", (chunk) => (raw += chunk));
    request.on("end", () => {
      const body = JSON.parse(raw) as { wake_id: string; callback_url: string; streams: Array<{ path: string; tail_offset: string }> };
      deliveries.push({
        wakeId: body.wake_id,
        sender: new URL(body.callback_url).origin,
        tailOffset: body.streams.find((stream) => stream.path === "events/a")?.tail_offset,
      });
      response.writeHead(200, { "content-type": "application/json" }).end('{"done":true}');
    });
  });
  await new Promise<void>((resolve) => receiver!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, deliveries };
}

function serve(): Promise<ServerProcess> {
  return startServerProcess({
    dataDir: tempDir("tailhook-pg-subs-"),
    args: ["--open", "--db", pgTestUrl()],
    // info: the leadership changes are logged there.
    env: { TAILHOOK_DATABASE_SCHEMA: schema, TAILHOOK_LOG_LEVEL: "info" },
  });
}

async function call(server: ServerProcess, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.url}/v1/stream/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON: the assertions check its shape
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (text === "" ? null : JSON.parse(text)) as any };
}

/** Resolves with the probe's first value that is neither undefined nor false. */
function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined || value === false) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 50 },
  );
}

/** Leader: answers the __ds routes (404 for an unknown subscription); follower: 503 NOT_LEADER. */
async function isLeader(server: ServerProcess): Promise<boolean> {
  return (await call(server, "GET", "__ds/subscriptions/nobody")).status === 404;
}

/** Waits until exactly one of the two leads. */
async function roles(a: ServerProcess, b: ServerProcess): Promise<{ leader: ServerProcess; follower: ServerProcess }> {
  const [aLeads] = await waitFor("exactly one leader", async () => {
    const leads = await Promise.all([isLeader(a), isLeader(b)]);
    return leads[0] !== leads[1] ? leads : undefined;
  });
  return aLeads ? { leader: a, follower: b } : { leader: b, follower: a };
}

/** Appends { n } through `server` and returns the stream's new tail offset. */
async function append(server: ServerProcess, n: number): Promise<string> {
  const response = await fetch(`${server.url}/v1/stream/events/a`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ n }),
  });
  expect(response.status).toBeLessThan(300);
  return response.headers.get("stream-next-offset")!;
}

/** Ends the database session holding this schema's subscription lock, as a network fault or a DBA would. */
async function terminateLockSession(): Promise<number> {
  const sql = postgres(pgTestUrl(), { max: 1, onnotice: () => undefined });
  try {
    const rows = await sql`
      SELECT pg_terminate_backend(pid) FROM pg_locks
      WHERE locktype = 'advisory' AND classid = 7442293 AND objsubid = 2
        AND objid = (hashtext(${schema}::text || '/subscriptions')::bigint & 4294967295)::oid`;
    return rows.length;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

const NOT_LEADER = {
  status: 503,
  retryAfter: "1",
  body: { error: { code: "NOT_LEADER", message: "subscriptions are served by another tailhook process; retry" } },
};

describe("subscriptions on PostgreSQL with two processes", () => {
  it("run on the leader only, deliver each wake once, and move to the other process when the leader dies", async () => {
    const hook = await startReceiver();
    const [a, b] = await Promise.all([serve(), serve()]);

    let { leader, follower } = await roles(a, b);

    const subscription = { type: "webhook", pattern: "events/*", webhook: { url: hook.url }, lease_ttl_ms: 30_000 };
    expect(await call(follower, "PUT", "__ds/subscriptions/hook", subscription)).toEqual(NOT_LEADER);
    expect((await call(leader, "PUT", "__ds/subscriptions/hook", subscription)).status).toBe(201);
    expect(await call(follower, "GET", "__ds/subscriptions/hook")).toEqual(NOT_LEADER);
    expect(await call(follower, "POST", "__ds/subscriptions/hook/callback", {})).toEqual(NOT_LEADER);
    // The public keys are in the records, so the follower publishes the leader's.
    const leaderKeys = await call(leader, "GET", "__ds/jwks.json");
    expect(leaderKeys.status).toBe(200);
    expect(await call(follower, "GET", "__ds/jwks.json")).toMatchObject({ status: 200, body: leaderKeys.body });

    // Appends through the follower; the leader hears of them by NOTIFY and delivers.
    expect((await call(follower, "PUT", "events/a")).status).toBe(201);
    const tails: string[] = [];
    for (let n = 1; n <= 3; n++) {
      tails.push(await append(follower, n));
      await waitFor(`delivery ${n}`, () => hook.deliveries.length >= n);
    }
    // Time for a second delivery from anyone to show up, if one were coming (two
    // processes: no sentinel orders before the other one's stray delivery).
    await sleep(2_000);
    expect(hook.deliveries).toHaveLength(3);
    expect(new Set(hook.deliveries.map((delivery) => delivery.wakeId)).size).toBe(3);
    expect(hook.deliveries.map((delivery) => delivery.sender)).toEqual([leader.url, leader.url, leader.url]);
    expect(hook.deliveries.map((delivery) => delivery.tailOffset)).toEqual(tails);

    // The lock's session ends under the leader; its client would reconnect without a word.
    const lostBefore = leader.stdout.lines.filter((line) => line.includes("leadership lost")).length;
    expect(await terminateLockSession()).toBe(1);
    await leader.stdout.waitFor(
      (lines) => lines.filter((line) => line.includes("leadership lost")).length > lostBefore,
      5_000,
      "the leader to notice it lost the lock",
    );
    ({ leader, follower } = await roles(a, b));
    const tail = await append(follower, 4);
    await waitFor("a delivery after the lock moved", () => hook.deliveries.some((delivery) => delivery.tailOffset === tail));
    // Time for a repeat from the old leader to show up: another process, so a later
    // sentinel would not order before its stray delivery; a fixed wait, on purpose.
    await sleep(1_000);
    expect(hook.deliveries.slice(3)).toEqual([expect.objectContaining({ sender: leader.url, tailOffset: tail })]);

    // The leader dies without a word: its session ends and the lock with it.
    const killedAt = Date.now();
    await leader.kill("SIGKILL");
    await waitFor("the follower to take over", () => isLeader(follower), 10_000);
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(5_000);
    expect((await call(follower, "GET", "__ds/subscriptions/hook")).body).toMatchObject({ id: "hook", type: "webhook", status: "active" });

    const lastTail = await append(follower, 5);
    await waitFor("a delivery from the new leader", () => hook.deliveries.some((delivery) => delivery.tailOffset === lastTail));
    // As above: time for a repeat from another process to show up, if one were coming.
    await sleep(1_000);
    expect(hook.deliveries.slice(4)).toEqual([expect.objectContaining({ sender: follower.url, tailOffset: lastTail })]);
    expect(new Set(hook.deliveries.map((delivery) => delivery.wakeId)).size).toBe(5);
  });
});
