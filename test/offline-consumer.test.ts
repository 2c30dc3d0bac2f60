/*
 * The promise of key frames end to end: a consumer (a real child process keeping its
 * state and offset in a file, test/helpers/state-follower.mjs) is offline while the
 * producer goes on and compaction removes the changes it had not read. Started again,
 * it resumes from its saved offset, gets 410 behind the horizon, and the client
 * library re-syncs it from the key frame (onGone "snapshot") while the producer keeps
 * appending: it ends at exactly the producer's state. On the store under test (both).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, killAllChildren, spawnNode, tempDir, type Child } from "./helpers/processes.js";
import { startTestServer, testBackend, type TestServer } from "./helpers/server.js";

const FOLLOWER = fileURLToPath(new URL("./helpers/state-follower.mjs", import.meta.url));
const JSON_TYPE = { "content-type": "application/json" };
const seqOf = (offset: string) => Number(offset.split("_")[1]);

interface Change {
  type: string;
  key: string;
  value?: unknown;
  headers: { operation: string };
}
interface FollowerLine {
  kind: string;
  offset?: string;
  losses: number;
}

/** The producer: appends changes and keeps the state they lead to (the oracle). */
class Producer {
  readonly state = new Map<string, unknown>();
  tailSeq = 0;
  private version = 0;

  constructor(
    private readonly server: TestServer,
    private readonly stream: string,
  ) {}

  /** One round over the keys: updates most, deletes every fifth, inserts the deleted ones again next round. */
  async round(keys: number): Promise<void> {
    const changes: Change[] = [];
    this.version++;
    for (let n = 0; n < keys; n++) {
      const key = `k${n}`;
      const id = JSON.stringify(["item", key]);
      if ((n + this.version) % 5 === 0 && this.state.has(id)) {
        changes.push({ type: "item", key, headers: { operation: "delete" } });
        this.state.delete(id);
      } else {
        const value = { n, version: this.version, note: "x".repeat(n % 7) };
        changes.push({ type: "item", key, value, headers: { operation: this.state.has(id) ? "update" : "insert" } });
        this.state.set(id, value);
      }
    }
    const response = await this.server.admin(`/v1/stream/${this.stream}`, {
      method: "POST",
      headers: JSON_TYPE,
      body: JSON.stringify(changes),
    });
    expect(response.status, await response.clone().text()).toBe(204);
    this.tailSeq = seqOf(response.headers.get("stream-next-offset")!);
  }
}

function followerState(file: string): Map<string, unknown> {
  const saved = JSON.parse(readFileSync(file, "utf8")) as { changes: Change[] };
  return new Map(saved.changes.map((change) => [JSON.stringify([change.type, change.key]), change.value]));
}

const lines = (child: Child) => child.stdout.lines.map((line) => JSON.parse(line) as FollowerLine);
const reached = (child: Child, seq: number) =>
  lines(child).some((line) => line.offset !== undefined && line.kind !== "reset" && seqOf(line.offset) >= seq);

describe(`a consumer offline while compaction ran (${testBackend})`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await killAllChildren();
    await server.stop();
  });

  it("re-syncs from the key frame through the client library and ends at the producer's exact state", async () => {
    const stream = "apps/offline-consumer";
    const created = await server.admin(`/v1/stream/${stream}`, {
      method: "PUT",
      headers: { ...JSON_TYPE, "stream-state": "v1", "stream-compact": "key-frame; lag=0; tombstone-age=0" },
    });
    expect(created.status).toBe(201);
    const producer = new Producer(server, stream);
    const stateFile = join(tempDir("tailhook-follower-"), "state.json");
    const follow = () => spawnNode([FOLLOWER, server.url, server.adminToken, stream, stateFile], cleanEnv());

    for (let round = 0; round < 3; round++) await producer.round(30);
    const online = follow();
    await online.stdout.waitFor(() => reached(online, producer.tailSeq), 20_000, `the follower at seq ${producer.tailSeq}`);
    await online.kill("SIGKILL");
    const savedOffset = (JSON.parse(readFileSync(stateFile, "utf8")) as { offset: string }).offset;
    expect(followerState(stateFile)).toEqual(producer.state);

    // Offline: the producer goes on, and compaction removes what the follower has not read.
    for (let round = 0; round < 10; round++) await producer.round(30);
    await server.store.compactNow!();
    const behind = await server.admin(`/v1/stream/${stream}?offset=${savedOffset}`);
    expect(behind.status, "the saved offset is behind the horizon").toBe(410);
    expect(behind.headers.get("link")).toContain('rel="snapshot"');

    // Back online while the producer keeps appending.
    const back = follow();
    for (let round = 0; round < 5; round++) await producer.round(30);
    await back.stdout.waitFor(() => reached(back, producer.tailSeq), 20_000, `the follower at seq ${producer.tailSeq}`);
    await back.kill("SIGTERM");

    const seen = lines(back);
    expect(seen[0], "the first thing after the 410 is a reset").toMatchObject({ kind: "reset", losses: 1 });
    expect(seen.filter((line) => line.kind === "reset")).toHaveLength(1);
    expect(seen.some((line) => line.kind === "snapshot")).toBe(true);
    expect(followerState(stateFile)).toEqual(producer.state);
  });
});
