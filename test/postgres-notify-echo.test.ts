/*
 * A PostgreSQL store tells its own commit listeners once per commit (PostgreSQL only):
 * it calls them directly after the commit, so the NOTIFY echo it gets back from its
 * own transaction must not call them again; another store on the same database —
 * another process — still hears each commit once, through the NOTIFY.
 *
 * No sleeps: PostgreSQL delivers notifications in commit order, so once a store has
 * heard a later commit by the other store ("the sentinel"), any echo of an earlier one
 * would have arrived too.
 */
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import type { CapturedRequest } from "../dist/core/types.js";
import { PostgresStore } from "../dist/storage/postgres/postgres-store.js";
import { createDatabase, dropDatabase, type TestDatabase } from "./helpers/pg.js";
import { waitUntil } from "./helpers/wait.js";
import { capturedRequest } from "./helpers/captured.js";
import { appendRequest, createRequest } from "./helpers/stream-requests.js";

const databases: TestDatabase[] = [];
const stores: PostgresStore[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
  for (const database of databases) await dropDatabase(database);
});

function request(body: string): CapturedRequest {
  return capturedRequest(randomBytes(8).toString("hex"), body);
}

/** Every (streamId, tail) a store's commit listeners were called with, in order. */
function recordCommits(store: PostgresStore): Array<[number, number]> {
  const heard: Array<[number, number]> = [];
  store.onCommit((tails) => {
    for (const entry of tails) heard.push(entry);
  });
  return heard;
}

const countOf = (heard: Array<[number, number]>, streamId: number, tail: number) =>
  heard.filter(([id, seq]) => id === streamId && seq === tail).length;

async function openPair(): Promise<[PostgresStore, PostgresStore]> {
  const database = await createDatabase("th_echo");
  databases.push(database);
  const a = await PostgresStore.open({ url: database.url });
  const b = await PostgresStore.open({ url: database.url });
  stores.push(a, b);
  return [a, b];
}

async function createInboxOn(store: PostgresStore) {
  return store.createInbox({ id: `in_${randomBytes(6).toString("hex")}`, name: null, tokenHash: Buffer.from("x"), settings: {} });
}

describe("PostgreSQL commit listeners and the NOTIFY echo", () => {
  it("an append reaches its own store's listeners once, and another store's once", async () => {
    const [a, b] = await openPair();
    const inbox = await createInboxOn(a);
    const sentinel = await createInboxOn(b);
    const heardA = recordCommits(a);
    const heardB = recordCommits(b);

    const appended = await a.appendEvent(inbox.streamId, request('{"n":1}'));
    expect(appended).toMatchObject({ status: "appended", seq: 1 });
    const fromB = await b.appendEvent(sentinel.streamId, request('{"n":2}'));
    expect(fromB).toMatchObject({ status: "appended", seq: 1 });

    await waitUntil(() => countOf(heardA, sentinel.streamId, 1) > 0, "store A to hear store B's append");
    await waitUntil(() => countOf(heardB, inbox.streamId, 1) > 0, "store B to hear store A's append");
    // Seal B's view too: a later commit by A, heard by B, comes after any echo of B's own append.
    const later = await a.appendEvent(inbox.streamId, request('{"n":3}'));
    expect(later).toMatchObject({ status: "appended", seq: 2 });
    await waitUntil(() => countOf(heardB, inbox.streamId, 2) > 0, "store B to hear store A's second append");

    expect(countOf(heardA, inbox.streamId, 1)).toBe(1);
    expect(countOf(heardA, sentinel.streamId, 1)).toBe(1);
    expect(countOf(heardB, inbox.streamId, 1)).toBe(1);
    expect(countOf(heardB, sentinel.streamId, 1)).toBe(1);
  });

  it("a deleted inbox and a general stream append wake each store's listeners once", async () => {
    const [a, b] = await openPair();
    const inbox = await createInboxOn(a);
    const sentinel = await createInboxOn(b);
    const created = await a.general.createStream(createRequest(`echo-${randomBytes(4).toString("hex")}`));
    expect(created.status).toBe("created");
    const stream = (created as { stream: { id: number; name: string } }).stream;
    const heardA = recordCommits(a);
    const heardB = recordCommits(b);

    expect(await a.deleteInbox(inbox.id)).toBe(true);
    const general = await a.general.appendStream(appendRequest(stream.name, ["x"]));
    expect(general.status).toBe("appended");
    const fromB = await b.appendEvent(sentinel.streamId, request("{}"));
    expect(fromB).toMatchObject({ status: "appended", seq: 1 });
    await waitUntil(() => countOf(heardA, sentinel.streamId, 1) > 0, "store A to hear store B's append");
    await waitUntil(() => countOf(heardB, stream.id, 1) > 0, "store B to hear store A's general append");

    const wakeAll = Number.MAX_SAFE_INTEGER;
    expect(countOf(heardA, inbox.streamId, wakeAll)).toBe(1);
    expect(countOf(heardA, stream.id, 1)).toBe(1);
    expect(countOf(heardB, inbox.streamId, wakeAll)).toBe(1);
    expect(countOf(heardB, stream.id, 1)).toBe(1);
  });
});
