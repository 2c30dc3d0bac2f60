/*
 * The key-frame oracle (issue 11, "Done means"), on both stores: over random sequences
 * of inserts, updates, upserts, deletes, re-inserts and resets over a small key set,
 * appended to a state stream on a real server, @durable-streams/state's
 * MaterializedState fed
 *   (a) the whole log from -1 (read with @durable-streams/client), and
 *   (b) a snapshot, read page by page (small pages, so many) while appends go on, then
 *       the deltas after its X,
 * ends in the same state, which is also a plain model's; and the snapshot alone is the
 * model of the first X messages. Some runs restart the server in the middle of the
 * snapshot read (same data folder, same PostgreSQL schema) and go on with the cursor.
 * fast-check prints the seed and the shrunk sequence of a failing run.
 */
import { rmSync } from "node:fs";
import { stream } from "@durable-streams/client";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";
import { batches, checkSnapshot, materialize, model, seqOf, type Message, type Snapshot } from "./helpers/state-oracle.js";

const JSON_TYPE = { "content-type": "application/json" };
const PAGE_KEYS = 2;
const RUNS = 40;

describe("key-frame oracle: snapshot + deltas = whole log = model", () => {
  const dataDir = tempDir();
  let server: TestServer;
  let streams = 0;

  const start = () => startTestServer({}, { dataDir, snapshotPageKeys: PAGE_KEYS });
  async function restart() {
    await server.close();
    server = await start();
  }

  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** One append per batch, in order: `appended` is the log as the server holds it. */
  function appender(name: string, pending: Message[][]) {
    const appended: Message[] = [];
    return {
      appended,
      async next() {
        const batch = pending.shift();
        if (!batch) return;
        const response = await server.admin(`/v1/stream/${name}`, { method: "POST", headers: JSON_TYPE, body: JSON.stringify(batch) });
        expect(response.status, await response.text()).toBe(204);
        appended.push(...batch);
      },
      async rest() {
        while (pending.length > 0) await this.next();
      },
    };
  }

  /** A whole snapshot, each page read while the next batch is appended; a restart after page `restartAfter`. */
  async function snapshotWhileAppending(name: string, append: () => Promise<void>, restartAfter: number | null): Promise<Snapshot> {
    const pages: Message[][] = [];
    let offset = "snapshot";
    for (;;) {
      const [response] = await Promise.all([server.admin(`/v1/stream/${name}?offset=${offset}`), append()]);
      expect(response.status, await response.clone().text()).toBe(200);
      pages.push((await response.json()) as Message[]);
      offset = response.headers.get("stream-next-offset")!;
      if (!offset.startsWith("snapshot:")) return checkSnapshot(pages, offset);
      if (pages.length === restartAfter) await restart();
    }
  }

  /** Ordinary catch-up reads from `from` to the tail. */
  async function readDeltas(name: string, from: string): Promise<Message[]> {
    const messages: Message[] = [];
    for (let offset = from; ;) {
      const response = await server.admin(`/v1/stream/${name}?offset=${offset}`);
      expect(response.status).toBe(200);
      messages.push(...((await response.json()) as Message[]));
      offset = response.headers.get("stream-next-offset")!;
      if (response.headers.get("stream-up-to-date") === "true") return messages;
    }
  }

  /** The whole log from -1, with the real Durable Streams client. */
  async function readWholeLog(name: string): Promise<Message[]> {
    const response = await stream<Message>({
      url: `${server.url}/v1/stream/${name}`,
      headers: { authorization: `Bearer ${server.adminToken}` },
      offset: "-1",
      live: false,
    });
    return response.json();
  }

  it(`${RUNS} random runs: appends during a paged snapshot, some across a restart`, async () => {
    const runs = fc.record({
      batches,
      // How many batches are in before the snapshot read starts (modulo their number + 1); the rest go in during it and after it.
      before: fc.nat({ max: 14 }),
      // Restart after this page of the snapshot, or after the snapshot if it has fewer pages.
      restartAfter: fc.option(fc.integer({ min: 1, max: 6 }), { freq: 2, nil: null }),
    });
    await fc.assert(
      fc.asyncProperty(runs, async ({ batches, before, restartAfter }) => {
        const name = `oracle/run-${++streams}`;
        expect((await server.admin(`/v1/stream/${name}`, { method: "PUT", headers: { ...JSON_TYPE, "stream-state": "v1" } })).status).toBe(
          201,
        );
        const pending = batches.map((batch) => [...batch]);
        const writer = appender(name, pending);
        for (let index = 0; index < before % (batches.length + 1); index++) await writer.next();

        const snapshot = await snapshotWhileAppending(name, () => writer.next(), restartAfter);
        if (restartAfter !== null && snapshot.pages <= restartAfter) await restart();
        await writer.rest();
        const asOf = seqOf(snapshot.asOf);
        expect(materialize(snapshot.inserts)).toEqual(model(writer.appended.slice(0, asOf)));

        const deltas = await readDeltas(name, snapshot.asOf);
        expect(deltas).toHaveLength(writer.appended.length - asOf);
        const log = await readWholeLog(name);
        expect(log).toHaveLength(writer.appended.length);

        const expected = model(writer.appended);
        expect(materialize(log)).toEqual(expected);
        expect(materialize([...snapshot.inserts, ...deltas])).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });
});
