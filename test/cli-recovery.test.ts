/*
 * Recovery in the CLI, with real processes: a `tailhook serve` child, `tailhook tail` and
 * `tailhook forward` children, and a recording webhook target in this process.
 * `tail --from snapshot` prints the inbox's key frame between its markers, then the
 * events after it; a reader or forwarder that fell behind retention re-syncs from the
 * key frame with `--on-gone snapshot`, or exits 3 with `--on-gone stop`.
 */
import { rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createInboxOn } from "./helpers/inbox.js";
import {
  cliEnv,
  killAllChildren,
  runCli,
  spawnCli,
  startServerProcess,
  tempDir,
  type Child,
  type ServerProcess,
} from "./helpers/processes.js";
import { headerValues, Target } from "./helpers/target.js";
import { waitUntil } from "./helpers/wait.js";

const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;
const dirs: string[] = [];
const targets: Target[] = [];

afterEach(async () => {
  await killAllChildren();
  for (const target of targets.splice(0)) await target.close();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function startServer(): Promise<ServerProcess> {
  const dataDir = tempDir("tailhook-recovery-data-");
  dirs.push(dataDir);
  return startServerProcess({ dataDir, env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" }, args: ["--long-poll-timeout", "3000"] });
}

function env() {
  const made = cliEnv();
  dirs.push(made.HOME);
  return made;
}

/** An inbox whose events name their entity in /id, and a sender that remembers each entity's latest event. */
async function keyedInbox(server: ServerProcess, settings: Record<string, unknown> = {}) {
  const inbox = await createInboxOn(server, { settings: { keyFrame: { key: ["/id"] }, ...settings } });
  const latest = new Map<string, { seq: number; body: string }>();
  const send = async (id: string, version: number) => {
    const body = JSON.stringify({ id, version });
    const reply = await fetch(inbox.ingestUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(reply.status).toBe(200);
    const { seq } = (await reply.json()) as { seq: number };
    latest.set(id, { seq, body });
    return seq;
  };
  const args = (...rest: string[]) => ["--server", server.url, "--token", inbox.token, ...rest];
  const consumer = async (name: string) => {
    const response = await fetch(`${server.url}/api/inboxes/${inbox.id}/consumers/${name}`, {
      headers: { authorization: `Bearer ${inbox.token}` },
    });
    return (await response.json()) as { committedSeq: number; lag: { events: number; lostEvents: number } };
  };
  return { inbox, latest, send, args, consumer };
}

/**
 * z1 a1, then b1 c1 a2 b2 c2 a3 b3 c3 a4 b4 c4 a5 (seqs 3..14); retention keeps the last
 * six, 9..14, which hold the latest event of a (14), b (12) and c (13); z's only event is gone.
 */
async function fallBehind(setup: Awaited<ReturnType<typeof keyedInbox>>, server: ServerProcess) {
  await setup.send("z", 1);
  await setup.send("a", 1);
  for (let version = 1; version <= 4; version++) for (const id of ["b", "c", "a"]) await setup.send(id, version + (id === "a" ? 1 : 0));
  await waitUntil(async () => {
    const page = await fetch(`${server.url}/v1/stream/inbox/${setup.inbox.id}?offset=-1`, {
      headers: { authorization: `Bearer ${setup.inbox.token}` },
    });
    return ((await page.json()) as Array<{ seq: number }>)[0]?.seq === 9;
  }, "retention to keep 9..14");
}

const parsed = (child: Child) => child.stdout.lines.map((line) => JSON.parse(line) as Record<string, unknown>);

describe("tailhook tail", () => {
  it("--from snapshot --json prints a reset, the latest event per entity, snapshot-end, then the events after X", async () => {
    const server = await startServer();
    const setup = await keyedInbox(server);
    await setup.send("a", 1);
    await setup.send("b", 1);
    await setup.send("a", 2);
    const tail = spawnCli(setup.args("tail", setup.inbox.id, "--from", "snapshot", "--json"), env());
    await tail.stdout.waitForLines(4);
    await setup.send("c", 1);
    await tail.stdout.waitForLines(5);
    // Its exit is the sentinel: all of its output is read by then.
    await tail.kill("SIGTERM");
    const lines = parsed(tail);
    expect(lines[0]).toEqual({ kind: "reset", offset: offset(3), cause: "start" });
    expect(lines.slice(1, 3).map((line) => [line.snapshot, line.seq, line.body, line.offset])).toEqual([
      [true, 3, setup.latest.get("a")!.body, undefined],
      [true, 2, setup.latest.get("b")!.body, undefined],
    ]);
    expect(lines[3]).toEqual({ kind: "snapshot-end", offset: offset(3) });
    expect(lines[4]).toMatchObject({ seq: 4, offset: offset(4), body: setup.latest.get("c")!.body });
    expect(lines[4]!.snapshot).toBeUndefined();
    expect(lines).toHaveLength(5);
  });

  it("--from snapshot on a terminal-less line output frames the key frame with two marker lines", async () => {
    const server = await startServer();
    const setup = await keyedInbox(server);
    await setup.send("a", 1);
    const tail = spawnCli(setup.args("tail", setup.inbox.id, "--from", "snapshot"), env());
    await tail.stdout.waitForLines(3);
    await tail.kill("SIGTERM");
    expect(tail.stdout.lines[0]).toBe("── key frame as of #1: the latest event per entity ──");
    expect(tail.stdout.lines[1]).toMatch(/^key frame {2}\S+ {2}#1 {2}POST {2}\/ {2}application\/json/);
    expect(tail.stdout.lines[2]).toBe("── end of key frame; the events after #1 follow ──");
  });

  it("--consumer with --on-gone snapshot re-syncs a consumer behind retention and commits X", async () => {
    const server = await startServer();
    const setup = await keyedInbox(server, { retention: { maxEvents: 6 } });
    const created = await fetch(`${server.url}/api/inboxes/${setup.inbox.id}/consumers/reader`, {
      method: "PUT",
      headers: { authorization: `Bearer ${setup.inbox.token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(created.status).toBe(201);
    await fallBehind(setup, server);
    const tail = spawnCli(setup.args("tail", setup.inbox.id, "--consumer", "reader", "--on-gone", "snapshot", "--json"), env());
    await tail.stdout.waitForLines(5);
    await waitUntil(async () => (await setup.consumer("reader")).committedSeq === 14, "the consumer to commit X");
    expect(await tail.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const lines = parsed(tail);
    expect(lines[0]).toEqual({ kind: "reset", offset: offset(14), cause: "gone" });
    expect(lines.slice(1, 4).map((line) => line.seq)).toEqual([14, 12, 13]);
    expect(lines[4]).toEqual({ kind: "snapshot-end", offset: offset(14) });
    expect(tail.stderr.lines).toEqual([
      `tailhook: warning: events after the consumer reader's committed offset were removed by retention before they were read; re-syncing from the inbox's key frame (the latest event per entity)`,
    ]);
  });

  it("--on-gone stop exits 3 naming the earliest offset; a bad --on-gone is a usage error", async () => {
    const server = await startServer();
    const setup = await keyedInbox(server, { retention: { maxEvents: 6 } });
    await fallBehind(setup, server);
    const stopped = await runCli(setup.args("tail", setup.inbox.id, "--from", offset(2), "--on-gone", "stop"), env());
    expect(stopped.code).toBe(3);
    expect(stopped.lines).toEqual([]);
    expect(stopped.errorLines).toEqual([
      `tailhook: stopped: events after offset ${offset(2)} were removed before they were read (the earliest retained offset is ${offset(8)}); --on-gone snapshot re-syncs from the inbox's key frame, --on-gone earliest goes on from the earliest event`,
    ]);
    const bad = await runCli(setup.args("tail", setup.inbox.id, "--on-gone", "later"), env());
    expect(bad.code).toBe(2);
    expect(bad.errorLines[0]).toMatch(/^tailhook: --on-gone must be snapshot, earliest or stop, got later/);
  });
});

describe("tailhook forward", () => {
  async function behindForwarder() {
    const server = await startServer();
    const setup = await keyedInbox(server, { retention: { maxEvents: 6 } });
    const created = await fetch(`${server.url}/api/inboxes/${setup.inbox.id}/consumers/forward`, {
      method: "PUT",
      headers: { authorization: `Bearer ${setup.inbox.token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(created.status).toBe(201);
    await fallBehind(setup, server);
    expect(await setup.consumer("forward")).toMatchObject({ committedSeq: 0, lag: { lostEvents: 8 } });
    const target = await Target.start();
    targets.push(target);
    const forward = (...flags: string[]) =>
      spawnCli(setup.args("forward", setup.inbox.id, "--to", `${target.url}/hook`, "--timeout", "5000", ...flags), env());
    return { setup, target, forward };
  }

  it("--on-gone snapshot delivers the latest event per entity with X-Tailhook-Snapshot: 1, commits X, then goes on", async () => {
    const { setup, target, forward } = await behindForwarder();
    const forwarder = forward("--on-gone", "snapshot");
    await waitUntil(async () => (await setup.consumer("forward")).committedSeq === 14, "the key frame to be delivered and X committed");
    const seq = await setup.send("d", 1);
    await waitUntil(() => target.received.some((request) => request.seq === seq), "event d1 delivered");
    expect(await forwarder.kill("SIGTERM")).toEqual({ code: 0, signal: null });

    const deliveries = target.received.map((request) => ({
      seq: request.seq,
      snapshot: headerValues(request.rawHeaders, "x-tailhook-snapshot"),
      body: request.body.toString(),
      answer: request.answer,
    }));
    const entity = (id: string) => setup.latest.get(id)!;
    expect(deliveries).toEqual([
      // Entity order (a, b, c), each its latest event, byte for byte; z's only event was removed.
      { seq: 14, snapshot: ["1"], body: entity("a").body, answer: 200 },
      { seq: 12, snapshot: ["1"], body: entity("b").body, answer: 200 },
      { seq: 13, snapshot: ["1"], body: entity("c").body, answer: 200 },
      { seq: 15, snapshot: [], body: entity("d").body, answer: 200 },
    ]);
    expect(await setup.consumer("forward")).toMatchObject({ committedSeq: 15, lag: { events: 0, lostEvents: 0 } });
    expect(forwarder.stderr.lines).toEqual([
      `tailhook: warning: events after the consumer forward's committed offset were removed by retention before they were delivered; re-syncing from the inbox's key frame (the latest event per entity)`,
      `tailhook: delivering the key frame as of ${offset(14)}: the latest event per entity`,
      `tailhook: key frame delivered (3 events); going on with the events after ${offset(14)}`,
    ]);
    expect(forwarder.stdout.lines.slice(0, 3).every((line) => line.startsWith("key frame  #"))).toBe(true);
  });

  it("--on-gone stop exits 3 and delivers nothing", async () => {
    const { setup, target, forward } = await behindForwarder();
    const forwarder = forward("--on-gone", "stop");
    expect((await forwarder.exited).code).toBe(3);
    expect(target.received).toEqual([]);
    expect(forwarder.stderr.lines).toEqual([
      `tailhook: stopped: events after the consumer forward's committed offset were removed before they were read (the earliest retained offset is ${offset(8)}); --on-gone snapshot re-syncs from the inbox's key frame, --on-gone earliest goes on from the earliest event`,
    ]);
    expect(await setup.consumer("forward")).toMatchObject({ committedSeq: 0 });
  });
});
