/*
 * The CLI as users run it: `node dist/cli/main.js ...` child processes against a
 * `tailhook serve` child, each CLI child with its own empty HOME and config folder.
 * The central case: `tail` keeps running across a server restart on the same port
 * and prints every event exactly once, in order.
 */
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  cliEnv,
  killAllChildren,
  runCli,
  sleep,
  spawnCli,
  startServerProcess,
  tempDir,
  waitForConnection,
  type ServerProcess,
} from "./helpers/processes.js";
import type { EventEnvelope } from "../dist/core/types.js";
import { waitForReaders } from "./helpers/readers.js";

interface CreatedInbox {
  id: string;
  name: string | null;
  token: string;
  ingestUrl: string;
  streamUrl: string;
}

type Envelope = EventEnvelope;

/** The CLI's config file (src/cli/config-file.ts). */
interface SavedConfig {
  current?: string;
  servers: Record<string, { inboxes: Record<string, { token: string; name?: string | null }> }>;
}

const dirs: string[] = [];

function track<T extends string>(dir: T): T {
  dirs.push(dir);
  return dir;
}

async function server(options: Parameters<typeof startServerProcess>[0] = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? track(tempDir("tailhook-cli-data-"));
  return startServerProcess({ ...options, dataDir });
}

function env(extra: NodeJS.ProcessEnv = {}) {
  const result = cliEnv(extra);
  track(result.HOME);
  return result;
}

async function createInbox(target: ServerProcess): Promise<CreatedInbox> {
  const response = await fetch(`${target.url}/api/inboxes`, {
    method: "POST",
    headers: { authorization: `Bearer ${target.adminToken}`, "content-type": "application/json" },
    body: "{}",
  });
  expect(response.status).toBe(201);
  return (await response.json()) as CreatedInbox;
}

async function ingest(
  target: ServerProcess,
  inboxId: string,
  path: string,
  body: string | Buffer = "",
): Promise<{ id: string; seq: number }> {
  const response = await fetch(`${target.url}/h/${inboxId}${path}`, { method: "POST", body });
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; seq: number };
}

function parseNdjson(lines: string[]): Envelope[] {
  return lines.map((line) => JSON.parse(line) as Envelope);
}

/** One line on stderr, prefixed, with no stack trace. */
function expectOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.split("\n").filter((line) => line !== "");
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tailhook: /);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

afterEach(async () => {
  await killAllChildren();
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("create and the saved config", () => {
  it("create --json prints the inbox and saves server and token, so tail <id> needs no flags", async () => {
    const srv = await server();
    const cli = env();

    const created = await runCli(["--server", srv.url, "--token", srv.adminToken, "create", "orders", "--json"], cli);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toBe("");
    expect(created.lines).toHaveLength(1);
    const inbox = JSON.parse(created.lines[0]!) as CreatedInbox;
    expect(inbox).toMatchObject({ name: "orders", ingestUrl: `${srv.url}/h/${inbox.id}` });
    expect(inbox.token).toMatch(/^thk_/);
    expect(inbox.streamUrl).toContain(inbox.id);

    const configFile = join(cli.XDG_CONFIG_HOME, "tailhook", "config.json");
    const saved = JSON.parse(readFileSync(configFile, "utf8")) as SavedConfig;
    expect(saved.current).toBe(srv.url);
    expect(saved.servers[srv.url]!.inboxes[inbox.id]).toEqual({ token: inbox.token, name: "orders" });
    expect(statSync(configFile).mode & 0o777).toBe(0o600);

    await ingest(srv, inbox.id, "/first?x=1", "hello from the first event");
    await ingest(srv, inbox.id, "/second", Buffer.from([0xff, 0xfe, 0x00, 0x01]));

    // No --server, no --token, no TAILHOOK_* variables: all from the saved config.
    expect(Object.keys(cli).filter((name) => name.startsWith("TAILHOOK_") && name !== "TAILHOOK_LOG_LEVEL")).toEqual([]);
    const tail = spawnCli(["tail", inbox.id], cli);
    const lines = await tail.stdout.waitForLines(2);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/#1\s+POST\s+\/first\?x=1\s.*hello from the first event/);
    expect(lines[1]).toMatch(/#2\s+POST\s+\/second\s.*<binary 4 B>/);
    // A third event is the sentinel: once it is printed, tail has kept running and said nothing on stderr.
    await ingest(srv, inbox.id, "/third", "third");
    expect((await tail.stdout.waitForLines(3))[2]).toMatch(/#3\s+POST\s+\/third\s/);
    expect(tail.running).toBe(true);
    expect(tail.stderr.text).toBe("");
  });

  it("create writes to $TAILHOOK_CONFIG when set, keeping earlier inboxes", async () => {
    const srv = await server();
    const cli = env();
    const configFile = join(cli.HOME, "elsewhere", "tailhook.json");
    const withConfig = { ...cli, TAILHOOK_CONFIG: configFile, TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken };

    const first = await runCli(["create", "--json"], withConfig);
    const second = await runCli(["create", "--json"], withConfig);
    expect([first.code, second.code]).toEqual([0, 0]);
    const ids = [first, second].map((result) => (JSON.parse(result.lines[0]!) as CreatedInbox).id);
    const saved = JSON.parse(readFileSync(configFile, "utf8")) as SavedConfig;
    expect(Object.keys(saved.servers[srv.url]!.inboxes).sort()).toEqual([...ids].sort());
    expect(() => statSync(join(cli.XDG_CONFIG_HOME, "tailhook", "config.json"))).toThrow();
  });
});

describe("wait", () => {
  it("--count 2 exits 0 after printing exactly the first 2 events, sent after it started", async () => {
    const srv = await server();
    const inbox = await createInbox(srv);
    const waiter = spawnCli(["wait", inbox.id, "--count", "2"], env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: inbox.token }));

    // Its long-poll is parked on the server: from here on, anything sent is "after it started".
    await waitForReaders(srv, "long-poll");
    expect(waiter.running).toBe(true);
    expect(waiter.stdout.text).toBe("");

    const acks = [];
    for (const path of ["/one", "/two", "/three"]) acks.push(await ingest(srv, inbox.id, path, `body ${path}`));

    const exit = await Promise.race([waiter.exited, sleep(10_000).then(() => "still running" as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    const events = parseNdjson(waiter.stdout.lines);
    expect(events.map((event) => event.seq)).toEqual([1, 2]);
    expect(events.map((event) => event.id)).toEqual([acks[0]!.id, acks[1]!.id]);
    expect(events.map((event) => event.path)).toEqual(["/one", "/two"]);
    expect(events[0]!.body).toBe("body /one");
    expect(waiter.stdout.text.endsWith("\n")).toBe(true);
    expect(waiter.stderr.text).toBe("");
  });

  it("--count 3 --timeout 1 exits 124 with a one-line error after printing what came", async () => {
    const srv = await server();
    const inbox = await createInbox(srv);
    const ack = await ingest(srv, inbox.id, "/only", "just one");

    const result = await runCli(["--server", srv.url, "--token", inbox.token, "wait", inbox.id, "--count", "3", "--timeout", "1"], env());
    expect(result.code).toBe(124);
    expect(parseNdjson(result.lines).map((event) => event.id)).toEqual([ack.id]);
    expectOneLineError(result.stderr, /timed out after 1 s with 1 of 3 events/);
    expect(result.ms).toBeGreaterThanOrEqual(900);
    expect(result.ms).toBeLessThan(10_000);
  });
});

describe("tail", () => {
  it("--from now skips the events already there and prints the new ones", async () => {
    const srv = await server();
    const inbox = await createInbox(srv);
    await ingest(srv, inbox.id, "/old-1", "old");
    await ingest(srv, inbox.id, "/old-2", "old");

    const tail = spawnCli(["--server", srv.url, "--token", inbox.token, "tail", inbox.id, "--from", "now", "--json"], env());
    // We cannot see when tail has made its first request, so keep sending until it
    // prints: whatever it printed must be a gapless run of new events up to the last.
    const sent: Array<{ id: string; seq: number }> = [];
    for (let attempt = 0; tail.stdout.lines.length === 0; attempt++) {
      expect(attempt, "tail --from now printed nothing").toBeLessThan(40);
      sent.push(await ingest(srv, inbox.id, `/new-${sent.length + 1}`, "new"));
      await sleep(250);
    }
    // The last event is the sentinel: a repeat or a stray event would show before it.
    sent.push(await ingest(srv, inbox.id, "/last", "new"));
    const last = sent.at(-1)!;
    const lines = await tail.stdout.waitFor(
      (current) => current.some((line) => (JSON.parse(line) as Envelope).seq === last.seq),
      10_000,
      `event ${last.seq}`,
    );
    const seqs = parseNdjson(lines).map((event) => event.seq);
    expect(Math.min(...seqs)).toBeGreaterThan(2);
    const first = seqs[0]!;
    expect(seqs).toEqual(Array.from({ length: last.seq - first + 1 }, (_, index) => first + index));
    expect(tail.running).toBe(true);
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`--json prints every event exactly once, in order, across a server ${signal} and restart on the same port`, async () => {
      const dataDir = track(tempDir("tailhook-cli-restart-"));
      // A short long-poll timeout makes tail also go through empty (204) polls.
      const args = ["--long-poll-timeout", "700"];
      const first = await server({ dataDir, args });
      const inbox = await createInbox(first);
      const acks: Array<{ id: string; seq: number }> = [];
      for (let i = 1; i <= 3; i++) acks.push(await ingest(first, inbox.id, `/before/${i}`, `before ${i}`));

      const tail = spawnCli(["--server", first.url, "--token", inbox.token, "tail", inbox.id, "--json"], env());
      await tail.stdout.waitForLines(3);
      for (let i = 4; i <= 5; i++) acks.push(await ingest(first, inbox.id, `/live/${i}`, Buffer.from([0xc3, 0x28, i])));
      await tail.stdout.waitForLines(5);
      await sleep(900); // at least one empty long-poll
      expect(tail.stdout.lines).toHaveLength(5);

      const stopped = await Promise.race([first.kill(signal), sleep(8_000).then(() => "did not stop" as const)]);
      expect(stopped).toEqual(signal === "SIGTERM" ? { code: 0, signal: null } : { code: null, signal: "SIGKILL" });
      await sleep(400); // the server is down and nothing is sent

      const second = await server({ dataDir, args, port: first.port });
      expect(second.url).toBe(first.url);
      for (let i = 6; i <= 8; i++) acks.push(await ingest(second, inbox.id, `/after/${i}`, `after ${i}`));
      await tail.stdout.waitForLines(8, 20_000);
      // Event 9 is the sentinel: a repeat of any earlier event would be printed before it.
      acks.push(await ingest(second, inbox.id, "/sentinel", "sentinel"));
      await tail.stdout.waitFor(
        (current) => current.some((line) => (JSON.parse(line) as Envelope).seq === 9),
        20_000,
        "the sentinel, event 9",
      );
      expect(tail.running).toBe(true);

      const events = parseNdjson(tail.stdout.lines);
      expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(events.map((event) => event.id)).toEqual(acks.map((ack) => ack.id));
      expect(acks.map((ack) => ack.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(events[3]!.bodyEncoding).toBe("base64");
      expect(events[7]!.body).toBe("after 8");

      // stderr holds only retry notices, one line each.
      const notices = tail.stderr.lines;
      for (const line of notices) expect(line).toMatch(/^tailhook: connection trouble \(.*\); retrying in \d+ ms$/);
      if (signal === "SIGKILL") expect(notices.length).toBeGreaterThan(0);
    }, 45_000);
  }
});

describe("tail --from now and restarts", () => {
  // "now" means when tail started: a restart before the first event arrived must not
  // move that point forward and skip what was sent after the restart.
  it("--from now still prints events sent after a server restart that came before any event", async () => {
    const dataDir = track(tempDir("tailhook-cli-now-"));
    const first = await server({ dataDir });
    const inbox = await createInbox(first);
    await ingest(first, inbox.id, "/old", "old");

    const tail = spawnCli(["--server", first.url, "--token", inbox.token, "tail", inbox.id, "--from", "now", "--json"], env());
    // Tail is in its first long-poll (30 s by default), having received nothing yet.
    await waitForConnection(tail.process.pid!, first.port);
    await waitForReaders(first, "long-poll");
    await first.kill("SIGKILL");
    await sleep(300); // the server stays down a moment, as in a real crash: tail must keep its "now"

    const second = await server({ dataDir, port: first.port });
    const acks = [await ingest(second, inbox.id, "/new-1", "new"), await ingest(second, inbox.id, "/new-2", "new")];
    await tail.stdout.waitForLines(2, 8_000);
    // A third event is the sentinel: nothing else may come before it.
    acks.push(await ingest(second, inbox.id, "/new-3", "new"));
    const lines = await tail.stdout.waitForLines(3, 8_000);
    expect(parseNdjson(lines).map((event) => event.seq)).toEqual(acks.map((ack) => ack.seq));
    expect(tail.running).toBe(true);
  }, 30_000);
});

describe("errors", () => {
  it("tail of an unknown inbox with a wrong token fails with one line, at once", async () => {
    const srv = await server();
    const result = await runCli(
      ["--server", srv.url, "--token", "thk_not-a-real-token", "tail", "noSuchInboxAtAll0000000", "--json"],
      env(),
    );
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stdout).toBe("");
    expectOneLineError(result.stderr, /401/);
  });

  // `tailhook tail <id> --json | head -n 1`: once the reader is gone, tail must end
  // quietly at its next write, not die with an unhandled EPIPE stack trace.
  it("tail whose stdout reader went away exits at the next event without a stack trace", async () => {
    const srv = await server();
    const inbox = await createInbox(srv);
    await ingest(srv, inbox.id, "/first", "first");
    const tail = spawnCli(["--server", srv.url, "--token", inbox.token, "tail", inbox.id, "--json"], env());
    await tail.stdout.waitForLines(1);
    tail.process.stdout!.destroy();
    await sleep(200); // nothing to wait for: tail must simply not die before its next write
    expect(tail.running).toBe(true);

    await ingest(srv, inbox.id, "/second", "second");
    const exit = await Promise.race([tail.exited, sleep(2_000).then(() => undefined)]);
    if (exit === undefined) {
      // Writes may be buffered for a moment; a few more events must end it.
      for (let i = 0; i < 5 && tail.running; i++) await ingest(srv, inbox.id, `/more-${i}`, "more");
    }
    const finalExit = await Promise.race([tail.exited, sleep(5_000).then(() => "still running" as const)]);
    expect(finalExit).not.toBe("still running");
    expect(tail.stderr.text).not.toMatch(/\n\s+at |Unhandled|EPIPE/);
    expect(tail.stderr.lines.length).toBeLessThanOrEqual(1);
  });

  it("bad options and a wrong admin token are one-line errors too", async () => {
    const srv = await server();
    const inbox = await createInbox(srv);
    const cli = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: inbox.token });

    const badCount = await runCli(["wait", inbox.id, "--count", "0"], cli);
    expect(badCount.code).toBe(2);
    expectOneLineError(badCount.stderr, /--count must be a positive integer/);

    const badTimeout = await runCli(["wait", inbox.id, "--timeout", "soon"], cli);
    expect(badTimeout.code).toBe(2);
    expectOneLineError(badTimeout.stderr, /--timeout/);

    // The inbox token is not the admin token.
    const create = await runCli(["create"], cli);
    expect(create.code).toBe(1);
    expect(create.stdout).toBe("");
    expectOneLineError(create.stderr, /401/);
  });
});
