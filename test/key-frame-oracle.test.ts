/*
 * The key-frame oracle (issue 11, "Done means"), on both stores: over random sequences
 * of inserts, updates, upserts, deletes, re-inserts and resets over a small key set,
 * appended to a state stream on a real server, @durable-streams/state's
 * MaterializedState fed
 *   (a) the whole log from -1 (read with @durable-streams/client),
 *   (b) a snapshot, read page by page (small pages, so many) while appends go on, then
 *       the deltas after its X,
 *   (c) after compaction (a Stream-Compact stream, compactNow), a snapshot then the
 *       deltas, and also the compacted log from -1,
 * ends in the same state, which is also a plain model's; and the snapshot alone is the
 * model of the first X messages. Some runs restart the server in the middle (same data
 * folder, same PostgreSQL schema) and go on with the cursor. Passes run only when a
 * run asks (compactNow), so a failing run replays: fast-check prints its seed and the
 * shrunk sequence.
 */
import { rmSync } from "node:fs";
import { stream } from "@durable-streams/client";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, tempDir, type TestServer } from "./helpers/server.js";
import { batches, checkSnapshot, materialize, model, seqOf, type Message, type Snapshot } from "./helpers/state-oracle.js";

const JSON_TYPE = { "content-type": "application/json" };
const PAGE_KEYS = 2;
const RUNS = 25;

/** When a snapshot read restarts the server, or runs a compaction pass: after this page. */
interface Interruptions {
  restartAfter: number | null;
  compactAfter: number | null;
}

describe("key-frame oracle: snapshot + deltas = whole log = model", () => {
  const dataDir = tempDir();
  let server: TestServer;
  let streams = 0;

  const start = () => startTestServer({}, { dataDir, snapshotPageKeys: PAGE_KEYS, env: { TAILHOOK_PRUNE_INTERVAL_MS: "3600000" } });
  async function restart() {
    await server.close();
    server = await start();
  }
  const compact = () => server.store.compactNow!();

  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function create(headers: Record<string, string> = {}): Promise<string> {
    const name = `oracle/run-${++streams}`;
    const response = await server.admin(`/v1/stream/${name}`, {
      method: "PUT",
      headers: { ...JSON_TYPE, "stream-state": "v1", ...headers },
    });
    expect(response.status, await response.text()).toBe(201);
    return name;
  }

  /** One append per batch, in order: `appended` is the log as the server holds it. */
  function appender(name: string, batches: Message[][]) {
    const pending = batches.map((batch) => [...batch]);
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
      async take(count: number) {
        for (let index = 0; index < count; index++) await this.next();
      },
      async rest() {
        while (pending.length > 0) await this.next();
      },
    };
  }

  /**
   * A whole snapshot, each page read while the next batch is appended. A compaction
   * pass that overtakes the snapshot's X makes its cursor 410, with the snapshot's
   * address: the reader then starts again at offset=snapshot, as docs/key-frames.md says.
   */
  async function snapshotWhileAppending(name: string, append: () => Promise<void>, at: Interruptions): Promise<Snapshot> {
    let pages: Message[][] = [];
    let offset = "snapshot";
    let restarted = false;
    let compacted = false;
    for (;;) {
      const [response] = await Promise.all([server.admin(`/v1/stream/${name}?offset=${offset}`), append()]);
      if (response.status === 410 && compacted && offset !== "snapshot") {
        const body = (await response.json()) as { error: { code: string; snapshot?: string } };
        expect(body.error).toMatchObject({ code: "gone", snapshot: `/v1/stream/${name}?offset=snapshot` });
        expect(response.headers.get("link")).toBe(`</v1/stream/${name}?offset=snapshot>; rel="snapshot"`);
        pages = [];
        offset = "snapshot";
        continue;
      }
      expect(response.status, await response.clone().text()).toBe(200);
      pages.push((await response.json()) as Message[]);
      offset = response.headers.get("stream-next-offset")!;
      if (!offset.startsWith("snapshot:")) return checkSnapshot(pages, offset);
      if (!restarted && pages.length === at.restartAfter) {
        restarted = true;
        await restart();
      }
      if (!compacted && pages.length === at.compactAfter) {
        compacted = true;
        await compact();
      }
    }
  }

  /** Ordinary catch-up reads from `from` to the tail. */
  async function readDeltas(name: string, from: string): Promise<Message[]> {
    const messages: Message[] = [];
    for (let offset = from; ;) {
      const response = await server.admin(`/v1/stream/${name}?offset=${offset}`);
      expect(response.status, await response.clone().text()).toBe(200);
      messages.push(...((await response.json()) as Message[]));
      offset = response.headers.get("stream-next-offset")!;
      if (response.headers.get("stream-up-to-date") === "true") return messages;
    }
  }

  /** The whole (or compacted) log from -1, with the real Durable Streams client. */
  async function readFromStart(name: string): Promise<Message[]> {
    const response = await stream<Message>({
      url: `${server.url}/v1/stream/${name}`,
      headers: { authorization: `Bearer ${server.adminToken}` },
      offset: "-1",
      live: false,
    });
    return response.json();
  }

  /** The snapshot as of X is the model of the first X messages; it and the deltas after X, the model of all. */
  async function expectSnapshotThenDeltas(name: string, snapshot: Snapshot, appended: Message[]) {
    const asOf = seqOf(snapshot.asOf);
    expect(materialize(snapshot.inserts)).toEqual(model(appended.slice(0, asOf)));
    const deltas = await readDeltas(name, snapshot.asOf);
    expect(deltas).toHaveLength(appended.length - asOf);
    expect(materialize([...snapshot.inserts, ...deltas])).toEqual(model(appended));
  }

  // How many batches are in before the snapshot read starts (modulo their number + 1); the rest go in during it and after it.
  const before = fc.nat({ max: 14 });
  // After this page of the snapshot, or after the snapshot if it has fewer pages.
  const somePage = fc.option(fc.integer({ min: 1, max: 6 }), { freq: 2, nil: null });

  it(`(a) and (b): ${RUNS} random runs, appends during a paged snapshot, some across a restart`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.record({ batches, before, restartAfter: somePage }), async ({ batches, before, restartAfter }) => {
        const name = await create();
        const writer = appender(name, batches);
        await writer.take(before % (batches.length + 1));

        const snapshot = await snapshotWhileAppending(name, () => writer.next(), { restartAfter, compactAfter: null });
        if (restartAfter !== null && snapshot.pages <= restartAfter) await restart();
        await writer.rest();
        await expectSnapshotThenDeltas(name, snapshot, writer.appended);

        const log = await readFromStart(name);
        expect(log).toHaveLength(writer.appended.length);
        expect(materialize(log)).toEqual(model(writer.appended));
      }),
      { numRuns: RUNS },
    );
  });

  it(`(c) after compaction: ${RUNS} random runs, the compacted log and a snapshot then the deltas give the whole log's state`, async () => {
    const runs = fc.record({
      batches,
      before,
      lag: fc.constantFrom(0, 2, 5),
      tombstoneAge: fc.constantFrom("0", "never"),
      restartAfterPass: fc.boolean(),
      // A second pass while the snapshot is read: with lag 0 it overtakes X and the cursor answers 410.
      compactAfter: somePage,
    });
    await fc.assert(
      fc.asyncProperty(runs, async ({ batches, before, lag, tombstoneAge, restartAfterPass, compactAfter }) => {
        const name = await create({ "stream-compact": `key-frame; lag=${lag}; tombstone-age=${tombstoneAge}` });
        const writer = appender(name, batches);
        await writer.take(Math.max(1, before % (batches.length + 1)));
        const whole = materialize(await readFromStart(name));
        expect(whole).toEqual(model(writer.appended));

        await compact();
        if (restartAfterPass) await restart();
        const compacted = await readFromStart(name);
        expect(compacted.length).toBeLessThanOrEqual(writer.appended.length);
        expect(materialize(compacted)).toEqual(whole);

        const snapshot = await snapshotWhileAppending(name, () => writer.next(), { restartAfter: null, compactAfter });
        await writer.rest();
        await expectSnapshotThenDeltas(name, snapshot, writer.appended);
        expect(materialize(await readFromStart(name))).toEqual(model(writer.appended));
      }),
      { numRuns: RUNS },
    );
  });
});
