/*
 * Dedupe with two `tailhook serve --db` processes sharing one PostgreSQL database
 * (PostgreSQL only): the same delivery sent to both at once is appended once, and
 * every sender, whichever process it reached, gets the ack of that one event.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { bearer, readAll } from "./helpers/http.js";
import { createDatabase, dropDatabase, type TestDatabase } from "./helpers/pg.js";
import { killAllChildren, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";

const ADMIN_TOKEN = `tha_dedupe_${randomBytes(16).toString("hex")}`;
const databases: TestDatabase[] = [];
const dataDirs: string[] = [];

async function serve(dbUrl: string): Promise<ServerProcess> {
  const dataDir = tempDir("tailhook-dedupe-");
  dataDirs.push(dataDir);
  return startServerProcess({ dataDir, args: ["--db", dbUrl], env: { TAILHOOK_ADMIN_TOKEN: ADMIN_TOKEN } });
}

afterEach(async () => {
  await killAllChildren();
});
afterAll(async () => {
  for (const database of databases) await dropDatabase(database);
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe("dedupe across processes", () => {
  it("one delivery id sent to two processes concurrently is appended once", async () => {
    const database = await createDatabase("th_dedupe");
    databases.push(database);
    const [a, b] = await Promise.all([serve(database.url), serve(database.url)]);
    const created = await fetch(`${a!.url}/api/inboxes`, {
      method: "POST",
      headers: { ...bearer(ADMIN_TOKEN), "content-type": "application/json" },
      body: JSON.stringify({ settings: { dedupe: "github" } }),
    });
    expect(created.status).toBe(201);
    const inbox = (await created.json()) as { id: string; token: string };

    const DELIVERIES = 30;
    const COPIES_PER_PROCESS = 4;
    const sends: Array<Promise<{ delivery: number; status: number; ack: { id: string; seq: number } }>> = [];
    for (let delivery = 0; delivery < DELIVERIES; delivery++) {
      for (let copy = 0; copy < COPIES_PER_PROCESS; copy++) {
        for (const server of [a!, b!]) {
          sends.push(
            fetch(`${server.url}/h/${inbox.id}`, {
              method: "POST",
              headers: { "X-GitHub-Delivery": `guid-${delivery}`, "content-type": "application/json" },
              body: JSON.stringify({ delivery, copy }),
            }).then(async (response) => ({
              delivery,
              status: response.status,
              ack: (await response.json()) as { id: string; seq: number },
            })),
          );
        }
      }
    }
    const replies = await Promise.all(sends);
    expect(replies.filter((reply) => reply.status !== 200)).toEqual([]);

    const { events } = await readAll(`${b!.url}/v1/stream/inbox/${inbox.id}`, inbox.token);
    expect(events).toHaveLength(DELIVERIES);
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: DELIVERIES }, (_, i) => i + 1));
    const guids = events.map((event) => event.headers.find(([name]) => name.toLowerCase() === "x-github-delivery")![1]);
    expect(new Set(guids).size).toBe(DELIVERIES);
    for (const event of events) {
      const guid = event.headers.find(([name]) => name.toLowerCase() === "x-github-delivery")![1];
      const acks = replies.filter((reply) => `guid-${reply.delivery}` === guid).map((reply) => reply.ack);
      // Every copy, from either process, was told the one stored event's id and seq.
      expect(
        acks.every((ack) => ack.id === event.id && ack.seq === event.seq),
        guid,
      ).toBe(true);
      const single = await fetch(`${a!.url}/api/inboxes/${inbox.id}/events/${event.seq}`, { headers: bearer(inbox.token) });
      expect(((await single.json()) as { deliveries: number }).deliveries).toBe(COPIES_PER_PROCESS * 2);
    }
  });
});
