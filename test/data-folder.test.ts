/*
 * The SQLite data folder's safety, with real `tailhook serve` children: a folder
 * deleted (or its database replaced) under a running server stops every further
 * acknowledgement; a folder that was initialised before never silently gets a fresh,
 * empty database; and only one server at a time runs on a folder, with the lock gone
 * the moment its holder dies.
 */
import { copyFileSync, existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CLI_PATH,
  cleanEnv,
  createInbox,
  killAllChildren,
  spawnNode,
  startServerProcess,
  tempDir,
  type Child,
  type ServerProcess,
} from "./helpers/processes.js";
import { waitUntil } from "./helpers/wait.js";

afterEach(async () => {
  await killAllChildren();
});

function post(server: ServerProcess, inboxId: string, body: string): Promise<number> {
  return fetch(`${server.url}/h/${inboxId}`, { method: "POST", body, headers: { "content-type": "text/plain" } }).then(
    async (response) => {
      await response.arrayBuffer();
      return response.status;
    },
    () => 0,
  );
}

async function status(url: string): Promise<number> {
  const response = await fetch(url);
  await response.arrayBuffer();
  return response.status;
}

async function readBodies(server: ServerProcess, inboxId: string, token: string): Promise<string[]> {
  const response = await fetch(`${server.url}/v1/stream/inbox/${inboxId}?offset=-1`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(200);
  const events = (await response.json()) as Array<{ body: string }>;
  return events.map((event) => event.body);
}

/** Runs `tailhook serve` on `dataDir`, expected to refuse to start: its exit, or a failure if it keeps running. */
async function serveExpectingRefusal(dataDir: string): Promise<{ code: number | null; stderr: string }> {
  const child: Child = spawnNode([CLI_PATH, "serve", "--port", "0", "--data", dataDir], cleanEnv());
  let timer: NodeJS.Timeout | undefined;
  const stillRunning = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`serve did not exit; it printed:\n${child.stderr.text}`)), 15_000);
  });
  try {
    const exit = await Promise.race([child.exited, stillRunning]);
    return { code: exit.code, stderr: child.stderr.text };
  } finally {
    clearTimeout(timer);
    await child.kill();
  }
}

/**
 * Senders that keep posting until stopped, recording every status in order, so the
 * test can tell whether any 2xx came after the first refusal.
 */
function keepPosting(server: ServerProcess, inboxId: string, senders = 4) {
  const statuses: number[] = [];
  let stopped = false;
  const loops = Array.from({ length: senders }, async (_, sender) => {
    for (let n = 0; !stopped; n++) statuses.push(await post(server, inboxId, `sender ${sender} event ${n}`));
  });
  return {
    statuses,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Under load: breaks the folder, then checks that nothing is acknowledged once the server noticed. */
async function expectAcknowledgementsToStop(server: ServerProcess, inboxId: string, breakFolder: () => void) {
  const sender = keepPosting(server, inboxId);
  try {
    await waitUntil(() => sender.statuses.filter((code) => code === 200).length >= 50, "some acks");
    breakFolder();
    const brokenAt = sender.statuses.length;
    await waitUntil(
      () => sender.statuses.includes(503),
      "the first 503 after the folder broke",
      15_000,
      () => {
        const acked = sender.statuses.slice(brokenAt).filter((code) => code === 200).length;
        return `; ${acked} posts were answered 200 after the folder broke`;
      },
    );
    const firstRefusal = sender.statuses.indexOf(503);
    await waitUntil(() => sender.statuses.length >= firstRefusal + 200, "200 more posts after the first 503");
    await sender.stop();
    const after = sender.statuses.slice(firstRefusal);
    expect(after.filter((code) => code !== 503)).toEqual([]);
    expect(await status(`${server.url}/healthz`)).toBe(503);
    expect(await status(`${server.url}/readyz`)).toBe(503);
    expect(await post(server, inboxId, "one more")).toBe(503);
    const output = server.stdout.text + server.stderr.text;
    const loud = (output.match(/no longer accepting writes/g) ?? []).length;
    expect(loud, output.slice(-2000)).toBe(1);
  } finally {
    await sender.stop();
  }
}

describe("a data folder broken under a running server", () => {
  it("stops acknowledging once the folder is deleted (rm -rf) while senders keep posting", async () => {
    const server = await startServerProcess();
    const inbox = await createInbox(server);
    await expectAcknowledgementsToStop(server, inbox.id, () => rmSync(server.dataDir, { recursive: true, force: true }));
  });

  it("stops acknowledging once tailhook.db is replaced by another file", async () => {
    const server = await startServerProcess();
    const inbox = await createInbox(server);
    const db = join(server.dataDir, "tailhook.db");
    await expectAcknowledgementsToStop(server, inbox.id, () => {
      copyFileSync(db, `${db}.copy`);
      renameSync(`${db}.copy`, db);
    });
  });
});

describe("a data folder that was initialised before", () => {
  it("refuses to start when tailhook.db is gone but the folder's marker is there", async () => {
    const first = await startServerProcess();
    const inbox = await createInbox(first);
    expect(await post(first, inbox.id, "acknowledged")).toBe(200);
    expect((await first.kill("SIGTERM")).code).toBe(0);
    for (const name of readdirSync(first.dataDir)) {
      if (name.startsWith("tailhook.db")) rmSync(join(first.dataDir, name));
    }
    const second = await serveExpectingRefusal(first.dataDir);
    expect(second.code, second.stderr).not.toBe(0);
    expect(second.code).not.toBeNull();
    expect(second.stderr).toContain(first.dataDir);
    expect(second.stderr).toMatch(/tailhook\.db is missing/);
    expect(existsSync(join(first.dataDir, "tailhook.db"))).toBe(false);
  });

  it("restarts normally on its folder (after SIGTERM and after SIGKILL) with every event kept", async () => {
    const first = await startServerProcess();
    const inbox = await createInbox(first);
    expect(await post(first, inbox.id, "one")).toBe(200);
    expect((await first.kill("SIGTERM")).code).toBe(0);
    const second = await startServerProcess({ dataDir: first.dataDir });
    expect(await post(second, inbox.id, "two")).toBe(200);
    await second.kill("SIGKILL");
    const third = await startServerProcess({ dataDir: first.dataDir });
    expect(await readBodies(third, inbox.id, inbox.token)).toEqual(["one", "two"]);
  });

  it("adopts a folder from before the marker existed (tailhook.db there, no marker)", async () => {
    const first = await startServerProcess();
    const inbox = await createInbox(first);
    expect(await post(first, inbox.id, "kept")).toBe(200);
    expect((await first.kill("SIGTERM")).code).toBe(0);
    const marker = join(first.dataDir, "tailhook-folder.json");
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);
    const second = await startServerProcess({ dataDir: first.dataDir });
    expect(await readBodies(second, inbox.id, inbox.token)).toEqual(["kept"]);
    expect(existsSync(marker)).toBe(true);
  });

  it("says loudly that it initialises a new data folder when the folder does not exist", async () => {
    const dataDir = join(tempDir(), "not-there-yet");
    const server = await startServerProcess({ dataDir });
    expect(server.stdout.text + server.stderr.text).toMatch(/initialising a NEW data folder/);
    expect(existsSync(join(dataDir, "tailhook-folder.json"))).toBe(true);
  });
});

describe("one server per data folder", () => {
  it("a second serve on the same folder exits at once, naming the folder and the holder's pid", async () => {
    const first = await startServerProcess();
    const inbox = await createInbox(first);
    const second = await serveExpectingRefusal(first.dataDir);
    expect(second.code, second.stderr).not.toBe(0);
    expect(second.code).not.toBeNull();
    expect(second.stderr).toContain(first.dataDir);
    expect(second.stderr).toContain(`pid ${first.process.pid}`);
    expect(first.running).toBe(true);
    expect(await post(first, inbox.id, "still serving")).toBe(200);
    expect(await readBodies(first, inbox.id, inbox.token)).toEqual(["still serving"]);
  });

  it("after the holder is SIGKILLed a new server starts on the folder at once", async () => {
    const first = await startServerProcess();
    const inbox = await createInbox(first);
    expect(await post(first, inbox.id, "before the kill")).toBe(200);
    await first.kill("SIGKILL");
    const second = await startServerProcess({ dataDir: first.dataDir });
    expect(await readBodies(second, inbox.id, inbox.token)).toEqual(["before the kill"]);
  });
});
