/*
 * Request logs of a real `tailhook serve` child at info level: one JSON line per
 * request on stdout (ingest, 404 ingest, admin API, stream reads, SSE and WebSocket
 * when they end), never a token or an ingest query string anywhere in the output, the
 * cause of a 5xx on its line (the store made to fail by filling a tiny tmpfs), and
 * --log-level warn keeping the info lines out.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createInbox, killAllChildren, runCli, cleanEnv, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";

const SENDER_SECRET = "sender-secret-in-query-7f3a9c";

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  method?: string;
  route?: string | null;
  inbox?: string;
  status?: number | null;
  requestBytes?: number;
  responseBytes?: number;
  durationMs?: number;
  aborted?: boolean;
  err?: { message: string; stack: string };
}

function parsedLines(server: ServerProcess): LogLine[] {
  return server.stdout.lines.filter((line) => line !== "").map((line) => JSON.parse(line) as LogLine);
}

/** Waits for the request line with this id, then checks (after a later request's line) that it is the only one. */
async function lineFor(server: ServerProcess, reqId: string | null): Promise<LogLine> {
  expect(reqId).toMatch(/\S/);
  await server.stdout.waitFor((lines) => lines.some((line) => line.includes(`"reqId":"${reqId}"`)), 10_000, `the log line of ${reqId}`);
  const sentinel = await fetch(`${server.url}/healthz`);
  const sentinelId = sentinel.headers.get("x-request-id")!;
  await sentinel.text();
  await server.stdout.waitFor((lines) => lines.some((line) => line.includes(`"reqId":"${sentinelId}"`)), 10_000, "the sentinel's log line");
  const matching = parsedLines(server).filter((line) => line.reqId === reqId);
  expect(matching).toHaveLength(1);
  return matching[0]!;
}

function expectFigures(line: LogLine): void {
  expect(typeof line.durationMs).toBe("number");
  expect(line.durationMs).toBeGreaterThanOrEqual(0);
  expect(typeof line.requestBytes).toBe("number");
  expect(typeof line.responseBytes).toBe("number");
}

describe("request logs at info level", () => {
  let server: ServerProcess;
  let inbox: { id: string; token: string };

  beforeAll(async () => {
    server = await startServerProcess({ env: { TAILHOOK_LOG_LEVEL: "info" } });
    inbox = await createInbox(server);
  });
  afterAll(killAllChildren);

  it("an ingest is one line: route pattern, inbox, status, bytes, duration, request id; no path or query", async () => {
    const response = await fetch(`${server.url}/h/${inbox.id}/github/push?secret=${SENDER_SECRET}`, { method: "POST", body: "hello" });
    const reply = await response.text();
    expect(response.status).toBe(200);
    const line = await lineFor(server, response.headers.get("x-request-id"));
    expect(line).toMatchObject({
      level: 30,
      msg: "request",
      method: "POST",
      route: "/h/:inbox",
      inbox: inbox.id,
      status: 200,
      requestBytes: 5,
    });
    expect(line.responseBytes).toBe(Buffer.byteLength(reply));
    expectFigures(line);
    expect(JSON.stringify(line)).not.toContain("github/push");
  });

  it("a 404 ingest is one line too", async () => {
    const missing = "A".repeat(22);
    const response = await fetch(`${server.url}/h/${missing}?secret=${SENDER_SECRET}`, { method: "POST", body: "lost" });
    await response.text();
    expect(response.status).toBe(404);
    const line = await lineFor(server, response.headers.get("x-request-id"));
    expect(line).toMatchObject({ level: 30, method: "POST", route: "/h/:inbox", inbox: missing, status: 404 });
    expectFigures(line);
  });

  it("an admin API call is logged with its route pattern", async () => {
    const response = await fetch(`${server.url}/api/inboxes/${inbox.id}`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    const reply = await response.text();
    expect(response.status).toBe(200);
    const line = await lineFor(server, response.headers.get("x-request-id"));
    expect(line).toMatchObject({
      level: 30,
      method: "GET",
      route: "/api/inboxes/:id",
      status: 200,
      responseBytes: Buffer.byteLength(reply),
    });
    expectFigures(line);
  });

  it("a stream read with ?token= is logged without the token", async () => {
    const response = await fetch(`${server.url}/v1/stream/inbox/${inbox.id}?offset=-1&token=${inbox.token}`);
    const reply = await response.text();
    expect(response.status).toBe(200);
    const line = await lineFor(server, response.headers.get("x-request-id"));
    expect(line).toMatchObject({ level: 30, method: "GET", route: "/v1/stream/*", status: 200, responseBytes: Buffer.byteLength(reply) });
    expectFigures(line);
  });

  it("an unmatched route is logged with route null", async () => {
    const response = await fetch(`${server.url}/no/such/route?token=${inbox.token}`);
    await response.text();
    expect(response.status).toBe(404);
    const line = await lineFor(server, response.headers.get("x-request-id"));
    expect(line).toMatchObject({ route: null, status: 404 });
  });

  it("an SSE read is logged once, when the client leaves", async () => {
    const abort = new AbortController();
    const response = await fetch(`${server.url}/v1/stream/inbox/${inbox.id}?offset=-1&live=sse`, {
      headers: { authorization: `Bearer ${inbox.token}` },
      signal: abort.signal,
    });
    expect(response.status).toBe(200);
    const reqId = response.headers.get("x-request-id");
    const reader = response.body!.getReader();
    await reader.read();
    expect(server.stdout.text).not.toContain(`"reqId":"${reqId}"`);
    abort.abort();
    const line = await lineFor(server, reqId);
    expect(line).toMatchObject({ level: 30, method: "GET", route: "/v1/stream/*", status: 200, aborted: true });
    expect(line.responseBytes).toBeGreaterThan(0);
    expectFigures(line);
  });

  it("a WebSocket is logged once, when it closes, with status 101", async () => {
    const reqId = `ws-${Date.now()}`;
    const socket = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/ws/inbox/${inbox.id}?offset=-1&token=${inbox.token}`, {
      headers: { "x-request-id": reqId },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("message", () => resolve());
      socket.once("error", reject);
    });
    expect(server.stdout.text).not.toContain(`"reqId":"${reqId}"`);
    socket.close();
    const line = await lineFor(server, reqId);
    expect(line).toMatchObject({ level: 30, method: "GET", route: "/v1/ws/inbox/:id", status: 101 });
    expect(line.responseBytes).toBeGreaterThan(0);
    expectFigures(line);
  });

  it("takes a sane incoming x-request-id and replaces one that is not", async () => {
    const sane = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": "lb-1234.abcd" } });
    await sane.text();
    expect(sane.headers.get("x-request-id")).toBe("lb-1234.abcd");
    await lineFor(server, "lb-1234.abcd");

    const odd = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": `has spaces ${"x".repeat(200)}` } });
    await odd.text();
    const replaced = odd.headers.get("x-request-id");
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
    await lineFor(server, replaced);
  });

  it("no token, no ingest query string, and only JSON on stdout", async () => {
    const output = server.stdout.text + server.stderr.text;
    for (const secret of [inbox.token, server.adminToken, SENDER_SECRET, "secret="]) expect(output).not.toContain(secret);
    const lines = server.stdout.lines.filter((line) => line !== "");
    expect(lines.length).toBeGreaterThan(8);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
  });
});

describe("log level", () => {
  afterAll(killAllChildren);

  it("--log-level warn keeps the info lines out, and wins over TAILHOOK_LOG_LEVEL", async () => {
    const server = await startServerProcess({ args: ["--log-level", "warn"], env: { TAILHOOK_LOG_LEVEL: "info" } });
    const inbox = await createInbox(server);
    const response = await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "quiet" });
    await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toMatch(/\S/);
    const exit = await server.kill("SIGTERM");
    expect(exit.code).toBe(0);
    // A fresh folder's start-up warning may appear; no info line (requests, listening) may.
    const levels = server.stdout.lines.filter((line) => line.trim() !== "").map((line) => (JSON.parse(line) as { level: number }).level);
    expect(levels.every((level) => level >= 40)).toBe(true);
    expect(server.stdout.text).not.toContain('"route"');
  });

  it("a bad --log-level or TAILHOOK_LOG_LEVEL is a one-line usage error", async () => {
    const flag = await runCli(["serve", "--port", "0", "--data", tempDir(), "--log-level", "loud"], cleanEnv());
    expect(flag.code).toBe(2);
    expect(flag.stdout).toBe("");
    expect(flag.errorLines).toEqual([expect.stringMatching(/^tailhook: .*log level.*fatal, error, warn, info, debug, trace, silent/)]);

    const env = await runCli(["serve", "--port", "0", "--data", tempDir()], cleanEnv({ TAILHOOK_LOG_LEVEL: "verbose" }));
    expect(env.code).toBe(2);
    expect(env.errorLines).toEqual([expect.stringMatching(/^tailhook: .*log level/)]);
  });
});

/** Mounts a tmpfs of `size` at a new folder, or returns undefined (and says why) where mounting is impossible. */
function mountTmpfs(size: string): string | undefined {
  const mountPoint = tempDir("tailhook-logfull-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mountPoint], { stdio: "pipe" });
    return mountPoint;
  } catch (error) {
    console.warn(`SKIP store-failure log test: cannot mount a tmpfs (${(error as Error).message.split("\n")[0]})`);
    rmSync(mountPoint, { recursive: true, force: true });
    return undefined;
  }
}

/** Writes zeros into `file` until the filesystem is full. */
function fillFilesystem(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
}

const mountPoint = mountTmpfs("8m");

describe.skipIf(mountPoint === undefined)("a store failure", () => {
  afterAll(async () => {
    await killAllChildren();
    try {
      execFileSync("umount", [mountPoint!], { stdio: "pipe" });
    } finally {
      rmSync(mountPoint!, { recursive: true, force: true });
    }
  });

  it("is logged at error level with its cause on the request's line", async () => {
    const dataDir = join(mountPoint!, "data");
    mkdirSync(dataDir);
    const server = await startServerProcess({ dataDir, env: { TAILHOOK_LOG_LEVEL: "info" } });
    const inbox = await createInbox(server);
    fillFilesystem(join(mountPoint!, "filler"));

    const response = await fetch(`${server.url}/h/${inbox.id}?secret=${SENDER_SECRET}`, {
      method: "POST",
      body: Buffer.alloc(512 * 1024, 120),
    });
    await response.text();
    expect(response.status).toBeGreaterThanOrEqual(500);
    const line = await lineFor(server, response.headers.get("x-request-id"));
    expect(line).toMatchObject({ level: 50, route: "/h/:inbox", inbox: inbox.id, status: response.status });
    expect(line.err?.message).toMatch(/full|ENOSPC|SQLITE/i);
    expect(line.err?.stack).toMatch(/\n\s+at /);
    expect(server.stdout.text + server.stderr.text).not.toContain(SENDER_SECRET);
  });
});
