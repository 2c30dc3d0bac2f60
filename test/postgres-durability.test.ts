/*
 * tailhook's durability on PostgreSQL must not depend on the server's defaults: its
 * sessions run with synchronous_commit = on whatever the database or role says, and
 * it refuses to start on a server running with fsync = off. The fsync refusal runs
 * against a private throwaway server started with fsync=off (the shared test server's
 * fsync is never changed); synchronous_commit is tried on a database of our own.
 */
import { afterAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { PostgresStore } from "../dist/storage/postgres/postgres-store.js";
import { checkServerDurability } from "../dist/storage/postgres/durability.js";
import { createDatabase, dropDatabase, startPrivateCluster, type PrivateCluster, type TestDatabase } from "./helpers/pg.js";
import { killAllChildren, startServerProcess } from "./helpers/processes.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  await killAllChildren();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("checkServerDurability", () => {
  it("refuses fsync=off and synchronous_commit=off, with a message that says what to change", () => {
    expect(() => checkServerDurability({ fsync: "off", synchronousCommit: "on" })).toThrow(/fsync=off.*acknowledged/);
    expect(() => checkServerDurability({ fsync: "on", synchronousCommit: "off" })).toThrow(/synchronous_commit/);
    for (const synchronousCommit of ["on", "local", "remote_write", "remote_apply"]) {
      expect(() => checkServerDurability({ fsync: "on", synchronousCommit })).not.toThrow();
    }
  });
});

describe("on PostgreSQL", () => {
  it("tailhook's sessions commit synchronously even when the database says synchronous_commit = off", async () => {
    const database: TestDatabase = await createDatabase("th_durability");
    cleanups.push(() => dropDatabase(database));
    const admin = postgres(database.url, { max: 1, onnotice: () => undefined });
    cleanups.push(() => admin.end({ timeout: 2 }));
    await admin.unsafe(`ALTER DATABASE ${database.name} SET synchronous_commit = off`);
    // Any other new session on that database now runs without synchronous commits...
    const plain = postgres(database.url, { max: 1, onnotice: () => undefined });
    const [plainSetting] = await plain`SHOW synchronous_commit`;
    await plain.end({ timeout: 2 });
    expect(plainSetting!.synchronous_commit).toBe("off");
    // ...but not tailhook's: its sessions report on.
    const store = await PostgresStore.open({ url: database.url, poolSize: 3 });
    cleanups.push(() => store.close());
    const settings = await Promise.all([1, 2, 3].map(() => store.durabilitySettings()));
    expect(settings).toEqual(Array(3).fill({ fsync: "on", synchronousCommit: "on" }));
  });

  it("`tailhook serve` refuses to start on a server running with fsync=off, and says why", async () => {
    const cluster: PrivateCluster = await startPrivateCluster({ fsync: false });
    cleanups.push(() => cluster.destroy());
    const error = await startServerProcess({ args: ["--db", cluster.url], timeoutMs: 20_000 }).then(
      () => undefined,
      (reason: Error) => reason,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toMatch(/server exited early \(1\)/);
    expect(error!.message).toMatch(/fsync=off/);
  });
});
