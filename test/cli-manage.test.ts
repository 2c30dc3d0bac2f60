/*
 * The management commands of the CLI as users run them: `node dist/cli/main.js …`
 * child processes against a `tailhook serve` child on port 0, each CLI child with its
 * own empty HOME (also its working folder) and config. Covers inbox show/rename/set/
 * delete by id and by name, events and event (exact body bytes), consumers with lag,
 * tail --consumer resuming, the multi-server config (and the old format), --version,
 * create --quiet, and errors that say which server and which token source was used.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI_PATH,
  cliEnv,
  freePort,
  killAllChildren,
  LineCollector,
  runCli,
  spawnCli,
  startServerProcess,
  tempDir,
  type CliResult,
  type ServerProcess,
} from "./helpers/processes.js";
import { rawRequest } from "./helpers/http.js";
import { waitUntil } from "./helpers/wait.js";

interface Inbox {
  id: string;
  name: string | null;
  token: string;
  ingestUrl: string;
  lastSeq: number;
  settings: Record<string, unknown>;
}

interface SavedConfig {
  current?: string;
  servers: Record<string, { inboxes: Record<string, { token: string; name?: string | null }> }>;
}

/** Each test runs a dozen CLI processes; on a loaded machine that takes a while. */
const SLOW_MACHINE_MS = 180_000;

const dirs: string[] = [];
let srv: ServerProcess;

function env(extra: NodeJS.ProcessEnv = {}) {
  const result = cliEnv(extra);
  dirs.push(result.HOME);
  return result;
}

async function server(): Promise<ServerProcess> {
  const dataDir = tempDir("tailhook-cli-manage-");
  dirs.push(dataDir);
  return startServerProcess({ dataDir });
}

function configFileOf(cli: { XDG_CONFIG_HOME: string }): string {
  return join(cli.XDG_CONFIG_HOME, "tailhook", "config.json");
}

/** One line on stderr, prefixed, with no stack trace; the exit code as given. */
function expectError(result: CliResult, exitCode: number, pattern: RegExp): string {
  expect(result.code, result.stderr).toBe(exitCode);
  expect(result.errorLines, result.stderr).toHaveLength(1);
  expect(result.errorLines[0]).toMatch(/^tailhook: /);
  expect(result.errorLines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return result.errorLines[0]!;
}

function ok(result: CliResult): CliResult {
  expect(result.code, result.stderr).toBe(0);
  return result;
}

async function adminApi(target: ServerProcess, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${target.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${target.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function ingest(target: ServerProcess, id: string, body: string | Buffer, path = ""): Promise<number> {
  const response = await fetch(`${target.url}/h/${id}${path}`, { method: "POST", body });
  expect(response.status).toBe(200);
  return ((await response.json()) as { seq: number }).seq;
}

/** Runs the CLI to completion with stdout as bytes (for --body). The server is another process, so blocking here is fine. */
function runCliBytes(args: string[], environment: NodeJS.ProcessEnv): { code: number | null; stdout: Buffer; stderr: string } {
  const run = spawnSync(process.execPath, [CLI_PATH, ...args], { env: environment, cwd: environment.HOME, timeout: 15_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr.toString("utf8") };
}

beforeAll(async () => {
  srv = await server();
});

// The servers live for the whole file; a test stops the CLI children it started itself.
afterAll(async () => {
  await killAllChildren();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("--version and create --quiet", { timeout: SLOW_MACHINE_MS }, () => {
  it("--version prints package.json's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-v"]) {
      const result = ok(await runCli([flag], env()));
      expect(result.stdout).toBe(`${version}\n`);
      expect(result.stderr).toBe("");
    }
  });

  it("create --quiet prints the id alone, and saves its token and name", async () => {
    const cli = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const result = ok(await runCli(["create", "quiet-one", "--quiet"], cli));
    expect(result.stdout).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{23}\n$/);
    const id = result.stdout.trim();
    const saved = JSON.parse(readFileSync(configFileOf(cli), "utf8")) as SavedConfig;
    expect(saved.servers[srv.url]!.inboxes[id]).toMatchObject({ name: "quiet-one" });
    expect(saved.servers[srv.url]!.inboxes[id]!.token).toMatch(/^thk_/);
  });
});

describe("inbox show, rename, set, delete", { timeout: SLOW_MACHINE_MS }, () => {
  it("shows an inbox by id or by name, renames it, and a name two inboxes share is refused with both ids", async () => {
    const cli = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "orders", "--quiet"], cli)).stdout.trim();
    await ingest(srv, id, "first");

    const byName = JSON.parse(ok(await runCli(["inbox", "show", "orders", "--json"], cli)).stdout) as Inbox;
    expect(byName).toMatchObject({ id, name: "orders", lastSeq: 1, silent: false });
    const text = ok(await runCli(["inbox", "show", id], cli)).stdout;
    expect(text).toContain(`inbox       ${id} (orders)`);
    expect(text).toContain(`ingest URL  ${srv.url}/h/${id}`);
    expect(text).toMatch(/events {6}1, the last at \d{4}-/);
    expect(text).not.toContain("\u001b["); // not a terminal: no colour

    const renamed = JSON.parse(ok(await runCli(["inbox", "rename", "orders", "shipping", "--json"], cli)).stdout) as Inbox;
    expect(renamed).toMatchObject({ id, name: "shipping" });
    expect((JSON.parse(ok(await runCli(["inbox", "show", "shipping", "--json"], cli)).stdout) as Inbox).id).toBe(id);
    expectError(
      await runCli(["inbox", "show", "orders"], cli),
      1,
      new RegExp(`${srv.url} \\(from TAILHOOK_URL\\) has no inbox with the id or name "orders"`),
    );

    const twins = [ok(await runCli(["create", "twin", "--quiet"], cli)), ok(await runCli(["create", "twin", "--quiet"], cli))].map((r) =>
      r.stdout.trim(),
    );
    const line = expectError(await runCli(["inbox", "show", "twin"], cli), 1, /2 inboxes on .* are named "twin" .*give the id instead/);
    for (const twin of twins) expect(line).toContain(twin);
  });

  it("set changes settings by key=value, dotted keys change one field, null removes; bad input is refused", async () => {
    const cli = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "settings-test", "--quiet"], cli)).stdout.trim();
    const set = async (...assignments: string[]) =>
      (JSON.parse(ok(await runCli(["inbox", "set", id, ...assignments, "--json"], cli)).stdout) as Inbox).settings;

    expect(await set("expectEvery=3600", "retention.maxEvents=5", "maxBodyBytes=1000")).toEqual({
      expectEvery: 3600,
      retention: { maxEvents: 5 },
      maxBodyBytes: 1000,
    });
    expect(await set("retention.maxAgeSeconds=60")).toMatchObject({ retention: { maxEvents: 5, maxAgeSeconds: 60 } });
    expect(await set("maxBodyBytes=null", "response.status=202", "response.body=ok")).toEqual({
      expectEvery: 3600,
      retention: { maxEvents: 5, maxAgeSeconds: 60 },
      response: { status: 202, headers: {}, body: "ok" },
    });

    expectError(await runCli(["inbox", "set", id, "expectEvery"], cli), 2, /settings are given as key=value/);
    expectError(
      await runCli(["inbox", "set", id, "expectEvery=0"], cli),
      1,
      /answered 400: settings\.expectEvery must be an integer from 1 to/,
    );
    expectError(await runCli(["inbox", "set", id, "bogus=1"], cli), 1, /answered 400: unknown field settings\.bogus/);
  });

  it("delete wants --yes, then removes the inbox and its saved token", async () => {
    const cli = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "doomed", "--quiet"], cli)).stdout.trim();
    expectError(await runCli(["inbox", "delete", "doomed"], cli), 2, /add --yes/);
    expect((await adminApi(srv, "GET", `/api/inboxes/${id}`)).status).toBe(200);
    expect(ok(await runCli(["inbox", "delete", "doomed", "--yes"], cli)).stdout).toBe(`deleted inbox ${id}\n`);
    expect((await adminApi(srv, "GET", `/api/inboxes/${id}`)).status).toBe(404);
    const saved = JSON.parse(readFileSync(configFileOf(cli), "utf8")) as SavedConfig;
    expect(saved.servers[srv.url]!.inboxes[id]).toBeUndefined();
  });
});

describe("events and event", { timeout: SLOW_MACHINE_MS }, () => {
  let cli: ReturnType<typeof env>;
  let id: string;
  const binary = Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x0d, 0x80, 0xc3, 0x28]);

  beforeAll(async () => {
    // The inbox token from the config file, as `create` leaves it: no admin token needed to read.
    const admin = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    cli = env({ TAILHOOK_CONFIG: configFileOf(admin) });
    id = ok(await runCli(["create", "--quiet"], admin)).stdout.trim();
    const raw = Buffer.from(
      `POST /h/${id}/hooks/one?x=1 HTTP/1.1\r\nHost: example\r\nX-Dup: first\r\nx-dup: second\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`,
    );
    expect((await rawRequest(srv.url, raw)).status).toBe(200);
    await ingest(srv, id, "two", "/two");
    await ingest(srv, id, binary, "/three");
  });

  it("events lists the newest --limit, or forward --from an offset, with offsets in --json", async () => {
    const newest = ok(await runCli(["events", id, "--limit", "2"], cli)).lines;
    expect(newest).toHaveLength(2);
    expect(newest[0]).toMatch(/#2\s+POST\s+\/two\s/);
    expect(newest[1]).toMatch(/#3\s+POST\s+\/three\s.*<binary 8 B>/);

    const all = ok(await runCli(["events", id, "--json"], cli)).lines.map((line) => JSON.parse(line) as { seq: number; offset: string });
    expect(all.map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(all.map((event) => event.offset)).toEqual([1, 2, 3].map((seq) => `0000000000000000_${String(seq).padStart(16, "0")}`));

    const after = ok(await runCli(["events", id, "--from", all[0]!.offset, "--limit", "1", "--json"], cli)).lines;
    expect(after.map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([2]);
    expectError(await runCli(["events", id, "--limit", "0"], cli), 2, /--limit must be an integer from 1 to 10000, got 0/);
  });

  it("event --body writes the exact bytes, --headers the raw headers in order, the default both", async () => {
    const body = runCliBytes(["event", id, "3", "--body"], cli);
    expect(body.code, body.stderr).toBe(0);
    expect(body.stdout.equals(binary)).toBe(true);

    const headers = ok(await runCli(["event", id, "1", "--headers"], cli)).lines;
    expect(headers).toEqual([
      "Host: example",
      "X-Dup: first",
      "x-dup: second",
      "Content-Type: text/plain",
      "Content-Length: 5",
      "Connection: close",
    ]);

    const shown = ok(await runCli(["event", id, "1"], cli)).stdout;
    expect(shown).toMatch(/^#1 {2}POST \/hooks\/one\?x=1\n/);
    expect(shown).toContain("\nX-Dup: first\nx-dup: second\n");
    expect(shown.endsWith("\n\nhello\n")).toBe(true);
    expect(ok(await runCli(["event", id, "3"], cli)).stdout).toContain("<binary 8 B; --body writes the bytes>");

    expectError(await runCli(["event", id, "1", "--body", "--headers"], cli), 2, /one at a time/);
    expectError(await runCli(["event", id, "first"], cli), 2, /<seq> is an event number/);
    expectError(
      await runCli(["event", id, "99"], cli),
      1,
      new RegExp(`${srv.url} \\(from the config file .*\\) answered 404: no such event \\(inbox ${id}\\)`),
    );
  });
});

describe("consumers", { timeout: SLOW_MACHINE_MS }, () => {
  it("lists consumers with their lag in events and seconds, and consumer delete removes one", async () => {
    const admin = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "with-consumers", "--quiet"], admin)).stdout.trim();
    const cli = env({ TAILHOOK_CONFIG: configFileOf(admin) });
    for (const n of [1, 2, 3]) await ingest(srv, id, `event ${n}`);
    expect((await adminApi(srv, "PUT", `/api/inboxes/${id}/consumers/worker`, {})).status).toBe(201);
    expect((await adminApi(srv, "PUT", `/api/inboxes/${id}/consumers/idle`, { from: "now" })).status).toBe(201);

    const lines = ok(await runCli(["consumers", "with-consumers"], cli)).lines;
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^idle {2}at #3 {2}caught up {2}last ack never$/);
    expect(lines[1]).toMatch(/^worker {2}at #0 {2}lag 3 events, \d+ s {2}last ack never$/);
    const json = ok(await runCli(["consumers", id, "--json"], cli)).lines.map(
      (line) => JSON.parse(line) as { name: string; lag: { events: number; seconds: number } },
    );
    expect(json.map((consumer) => [consumer.name, consumer.lag.events])).toEqual([
      ["idle", 0],
      ["worker", 3],
    ]);
    expect(json[1]!.lag.seconds).toBeGreaterThanOrEqual(0);

    expect(ok(await runCli(["consumer", "delete", id, "worker"], cli)).stdout).toBe(`deleted consumer worker of inbox ${id}\n`);
    expect(ok(await runCli(["consumers", id], cli)).lines.map((line) => line.split(" ")[0])).toEqual(["idle"]);
    expectError(await runCli(["consumer", "delete", id, "worker"], cli), 1, /answered 404: no such consumer/);
  });
});

describe("tail --consumer", { timeout: SLOW_MACHINE_MS }, () => {
  it("acks each event once printed, and a second run resumes after where the first stopped", async () => {
    const admin = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "--quiet"], admin)).stdout.trim();
    const cli = env({ TAILHOOK_CONFIG: configFileOf(admin) });
    for (const n of [1, 2, 3]) await ingest(srv, id, `event ${n}`);
    const committed = async () =>
      ((await (await adminApi(srv, "GET", `/api/inboxes/${id}/consumers/reader`)).json()) as { committedSeq?: number }).committedSeq;

    const first = spawnCli(["tail", id, "--consumer", "reader", "--json"], cli);
    const lines = await first.stdout.waitForLines(3);
    const events = lines.map((line) => JSON.parse(line) as { seq: number; offset: string });
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(events[2]!.offset).toBe("0000000000000000_0000000000000003");
    await waitUntil(async () => (await committed()) === 3, "the consumer acked up to #3");
    expect(await first.kill("SIGTERM")).toEqual({ code: 0, signal: null });

    for (const n of [4, 5]) await ingest(srv, id, `event ${n}`);
    const second = spawnCli(["tail", id, "--consumer", "reader", "--json"], cli);
    await second.stdout.waitForLines(2);
    await waitUntil(async () => (await committed()) === 5, "the consumer acked up to #5");
    expect(second.stdout.lines.map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([4, 5]);
    expect(second.stderr.text).toBe("");
    await second.kill("SIGTERM");
  });
});

describe("the config file remembers several servers", { timeout: SLOW_MACHINE_MS }, () => {
  let other: ServerProcess;
  beforeAll(async () => {
    other = await server();
  });
  afterAll(async () => {
    await other.kill("SIGTERM");
  });

  it("keeps each server's inboxes apart; the last one used is current; a token saved under another server is pointed out", async () => {
    const cli = env();
    const onFirst = ok(await runCli(["--server", srv.url, "--token", srv.adminToken, "create", "here", "--quiet"], cli)).stdout.trim();
    const onOther = ok(await runCli(["--server", other.url, "--token", other.adminToken, "create", "there", "--quiet"], cli)).stdout.trim();
    const saved = JSON.parse(readFileSync(configFileOf(cli), "utf8")) as SavedConfig;
    expect(saved.current).toBe(other.url);
    expect(Object.keys(saved.servers[srv.url]!.inboxes)).toEqual([onFirst]);
    expect(Object.keys(saved.servers[other.url]!.inboxes)).toEqual([onOther]);

    // No flags: the current server, with the token saved for that inbox; names work without the admin token.
    expect((JSON.parse(ok(await runCli(["inbox", "show", "there", "--json"], cli)).stdout) as Inbox).id).toBe(onOther);
    expect((JSON.parse(ok(await runCli(["--server", srv.url, "inbox", "show", "here", "--json"], cli)).stdout) as Inbox).id).toBe(onFirst);
    // The first server's inbox asked of the current (other) one: the wrong server, said so.
    expectError(
      await runCli(["inbox", "show", onFirst], cli),
      1,
      new RegExp(
        `no token for inbox ${onFirst} on ${other.url} \\(from the config file .*\\): .*has a token for it under ${srv.url}: use --server`,
      ),
    );
  });

  it("still reads the first format (one server, one inboxes map) and rewrites it on the next create", async () => {
    const cli = env();
    const created = (await (await adminApi(srv, "POST", "/api/inboxes", { name: "old-style" })).json()) as Inbox;
    mkdirSync(join(cli.XDG_CONFIG_HOME, "tailhook"), { recursive: true });
    writeFileSync(configFileOf(cli), JSON.stringify({ server: srv.url, inboxes: { [created.id]: { token: created.token } } }), {
      mode: 0o600,
    });
    expect((JSON.parse(ok(await runCli(["inbox", "show", created.id, "--json"], cli)).stdout) as Inbox).name).toBe("old-style");

    const added = ok(await runCli(["--server", other.url, "--token", other.adminToken, "create", "--quiet"], cli)).stdout.trim();
    const saved = JSON.parse(readFileSync(configFileOf(cli), "utf8")) as SavedConfig & { server?: string };
    expect(saved.server).toBeUndefined();
    expect(saved.servers[srv.url]!.inboxes[created.id]).toEqual({ token: created.token });
    expect(Object.keys(saved.servers[other.url]!.inboxes)).toEqual([added]);
  });
});

describe("errors say which server and which token source", { timeout: SLOW_MACHINE_MS }, () => {
  it("a mistyped id, a deleted inbox, a missing admin token, an inbox token for an admin command and a foreign admin token read differently", async () => {
    const admin = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "--quiet"], admin)).stdout.trim();
    const cli = env({ TAILHOOK_CONFIG: configFileOf(admin) });
    const config = configFileOf(admin);
    const typo = `${id.slice(0, -1)}${id.endsWith("x") ? "y" : "x"}`;

    const mistyped = expectError(
      await runCli(["tail", typo], cli),
      1,
      new RegExp(`no token for inbox ${typo} on ${srv.url} \\(from the config file ${config}\\): none saved for it`),
    );
    expect(mistyped).toMatch(/is the id right\?/);
    expectError(
      await runCli(["tail", typo], admin),
      1,
      new RegExp(`${srv.url} \\(from TAILHOOK_URL\\) has no inbox with the id or name "${typo}"`),
    );

    const missingAdmin = await runCli(["list"], cli);
    expectError(
      missingAdmin,
      1,
      new RegExp(
        `list needs the admin token of ${srv.url} \\(from the config file ${config}\\): no --token, no TAILHOOK_TOKEN, and no admin token at ${cli.HOME}/tailhook-data/admin-token`,
      ),
    );

    const inboxToken = (JSON.parse(readFileSync(config, "utf8")) as SavedConfig).servers[srv.url]!.inboxes[id]!.token;
    expectError(
      await runCli(["list"], { ...cli, TAILHOOK_TOKEN: inboxToken }),
      1,
      /refused the token from TAILHOOK_TOKEN \(401\): this command needs the admin token, not an inbox token/,
    );
    expectError(
      await runCli(["inbox", "rename", id, "x"], { ...cli, TAILHOOK_TOKEN: inboxToken }),
      1,
      /refused the token from TAILHOOK_TOKEN \(401\): this command needs the admin token/,
    );

    const foreign = env({ TAILHOOK_URL: srv.url });
    mkdirSync(join(foreign.HOME, "tailhook-data"));
    writeFileSync(join(foreign.HOME, "tailhook-data", "admin-token"), "tha_not-this-servers\n");
    expectError(
      await runCli(["list"], foreign),
      1,
      new RegExp(
        `${srv.url} \\(from TAILHOOK_URL\\) refused the admin token from ${foreign.HOME}/tailhook-data/admin-token \\(401\\): it is not this server's admin token`,
      ),
    );

    expect((await adminApi(srv, "DELETE", `/api/inboxes/${id}`)).status).toBe(204);
    expectError(
      await runCli(["inbox", "show", id], cli),
      1,
      new RegExp(
        `refused the inbox token saved for ${id} in ${config} \\(401\\): the inbox may have been deleted, or ${srv.url} is not the server that created it`,
      ),
    );
  });

  it("a server nobody answers on is named, with where its URL came from", async () => {
    const port = await freePort();
    expectError(
      await runCli(["--server", `http://127.0.0.1:${port}`, "--token", "x", "list"], env()),
      1,
      new RegExp(`cannot reach http://127.0.0.1:${port} \\(from --server\\): .*ECONNREFUSED`),
    );
  });

  it("usage errors are one line naming the help to read, with exit code 2", async () => {
    const cli = env({ TAILHOOK_URL: srv.url });
    expectError(await runCli(["tail", "x", "--bogus"], cli), 2, /^tailhook: unknown option '--bogus' \(see tailhook tail --help\)$/);
    expectError(
      await runCli(["inbox", "show"], cli),
      2,
      /^tailhook: missing required argument 'inbox' \(see tailhook inbox show --help\)$/,
    );
    expectError(await runCli(["inbox"], cli), 2, /^tailhook: a command is missing \(see tailhook inbox --help\)$/);
    expectError(await runCli(["lisst"], cli), 2, /^tailhook: unknown command 'lisst' .*\(see tailhook --help\)$/);
    expectError(await runCli(["tail", "x", "--consumer", "no spaces"], cli), 2, /^tailhook: a consumer name is 1 to 100 letters/);
  });
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`), so it sees a TTY on stdout and stderr. */
function spawnOnTerminal(args: string[], environment: NodeJS.ProcessEnv) {
  const command = [process.execPath, CLI_PATH, ...args].map((part) => `'${part.replaceAll("'", "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qefc", command, "/dev/null"], {
    env: environment,
    cwd: environment.HOME,
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  const output = new LineCollector(child.stdout);
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  return {
    output,
    async stop() {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      await exited;
    },
  };
}

describe("on a terminal", { timeout: SLOW_MACHINE_MS }, () => {
  it("tail of an empty inbox says it is waiting, on one line, then prints events in colour; NO_COLOR turns colour off", async () => {
    const admin = env({ TAILHOOK_URL: srv.url, TAILHOOK_TOKEN: srv.adminToken });
    const id = ok(await runCli(["create", "--quiet"], admin)).stdout.trim();
    const cli = env({ TAILHOOK_CONFIG: configFileOf(admin), TERM: "xterm" });

    const coloured = spawnOnTerminal(["tail", id], cli);
    try {
      await coloured.output.waitFor((lines) => lines.some((line) => line.includes("waiting for events…")), 15_000, "the waiting line");
      expect(coloured.output.lines.filter((line) => line.includes("waiting for events…"))).toEqual([
        "tailhook: waiting for events… (Ctrl-C to stop)\r",
      ]);
      await ingest(srv, id, "hello terminal");
      await coloured.output.waitFor((lines) => lines.some((line) => line.includes("hello terminal")), 15_000, "the event");
      const line = coloured.output.lines.find((candidate) => candidate.includes("hello terminal"))!;
      expect(line).toContain("\u001b[1m#1\u001b[22m");
    } finally {
      await coloured.stop();
    }

    const plain = spawnOnTerminal(["tail", id], { ...cli, NO_COLOR: "1" });
    try {
      await plain.output.waitFor((lines) => lines.some((line) => line.includes("hello terminal")), 15_000, "the event");
      expect(plain.output.text).not.toContain("\u001b[");
      // Not empty: no waiting line.
      expect(plain.output.text).not.toContain("waiting for events");
    } finally {
      await plain.stop();
    }
  });
});
