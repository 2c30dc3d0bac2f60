/*
 * Reconciliation sources on PostgreSQL with two `tailhook serve --db` processes:
 * only the leader of "sources" runs them (a poll of an unchanging body is appended
 * once, not once per process), and when the leader is killed the other process
 * takes over the same source and its state (the remembered hash: still one event).
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { bearer, readAll } from "./helpers/http.js";
import { FakePollTarget } from "./helpers/fake-providers.js";
import { createDatabase, dropDatabase, type TestDatabase } from "./helpers/pg.js";
import { killAllChildren, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";

const ADMIN_TOKEN = `tha_sources_${randomBytes(16).toString("hex")}`;
const databases: TestDatabase[] = [];
const dataDirs: string[] = [];
const targets: FakePollTarget[] = [];

async function serve(dbUrl: string): Promise<ServerProcess> {
  const dataDir = tempDir("tailhook-pg-sources-");
  dataDirs.push(dataDir);
  return startServerProcess({ dataDir, args: ["--db", dbUrl], env: { TAILHOOK_ADMIN_TOKEN: ADMIN_TOKEN, TAILHOOK_LOG_LEVEL: "info" } });
}

function api(server: ServerProcess, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { ...bearer(ADMIN_TOKEN), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

afterEach(async () => {
  await killAllChildren();
  for (const target of targets.splice(0)) await target.close();
  for (const database of databases.splice(0)) await dropDatabase(database);
  for (const dir of dataDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
afterAll(killAllChildren);

describe("sources on a shared PostgreSQL database", () => {
  it("run in the leader only, and move to the other process with their state when the leader dies", async () => {
    const database = await createDatabase("th_sources");
    databases.push(database);
    const target = await new FakePollTarget("poll-secret").start();
    targets.push(target);
    target.bodies.push('{"state":"same"}');

    const first = await serve(database.url);
    const second = await serve(database.url);
    const inbox = (await (await api(first, "/api/inboxes", {})).json()) as { id: string; token: string; streamUrl: string };
    const created = await api(second, `/api/inboxes/${inbox.id}/sources`, {
      kind: "poll",
      url: `${target.url}/state`,
      headers: { authorization: "Bearer poll-secret" },
      intervalSeconds: 1,
    });
    expect(created.status).toBe(201);

    // Several runs at 1 s intervals: with two runners the first runs of both would append.
    await vi.waitFor(() => expect(target.served).toBeGreaterThanOrEqual(4), { timeout: 20_000, interval: 100 });
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(1);

    // Exactly one process says it leads; kill it, and the other takes over with the hash it left.
    const leads = (server: ServerProcess) => server.stdout.text.includes("sources: this process leads");
    expect([first, second].filter(leads)).toHaveLength(1);
    const [leader, follower] = leads(first) ? [first, second] : [second, first];
    await leader.kill("SIGKILL");
    await follower.stdout.waitFor(() => leads(follower), 20_000, "the follower to lead sources");
    const servedBefore = target.served;
    await vi.waitFor(() => expect(target.served).toBeGreaterThanOrEqual(servedBefore + 2), { timeout: 20_000, interval: 100 });
    const streamUrl = inbox.streamUrl.replace(first.url, follower.url);
    expect((await readAll(streamUrl, inbox.token)).events).toHaveLength(1);
  });
});
