/*
 * Store.isFailure on the SQLite store, over real errors: what the disk or the file says
 * (read-only, busy) is the store's trouble (HTTP 503: retry), what our statements get
 * wrong (syntax, a constraint) and a TypeError are bugs (500); a writer batch that
 * failed on a bug in an operation is a bug too; once the store closes, every failure
 * is its own. And a real server still answers a real store failure 503. The PostgreSQL
 * store has the same test in postgres-store-failures.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteStore } from "../dist/storage/sqlite/sqlite-store.js";
import { StoreWriteError } from "../dist/storage/sqlite/writer.js";
import { capturingLogger, logLineOf } from "./helpers/log-lines.js";
import { startTestServer } from "./helpers/server.js";

const root = mkdtempSync(join(tmpdir(), "tailhook-store-failures-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("SqliteStore.isFailure", () => {
  it("tells the file's trouble from a bug, on real SQLite errors", async () => {
    const store = await SqliteStore.open({ dataDir: join(root, "store") });
    const file = join(root, "other.db");
    const writable = new Database(file);
    writable.exec("CREATE TABLE t (a INTEGER PRIMARY KEY)");
    writable.exec("INSERT INTO t VALUES (1)");
    const readOnly = new Database(file, { readonly: true });
    try {
      const refusedWrite = thrownBy(() => readOnly.exec("INSERT INTO t VALUES (2)"));
      expect((refusedWrite as { code: string }).code).toBe("SQLITE_READONLY");
      expect(store.isFailure(refusedWrite)).toBe(true);

      writable.exec("BEGIN EXCLUSIVE");
      const other = new Database(file, { timeout: 0 });
      const busy = thrownBy(() => other.exec("INSERT INTO t VALUES (3)"));
      other.close();
      writable.exec("ROLLBACK");
      expect((busy as { code: string }).code).toBe("SQLITE_BUSY");
      expect(store.isFailure(busy)).toBe(true);

      const syntax = thrownBy(() => readOnly.exec("SELEC 1"));
      expect((syntax as { code: string }).code).toBe("SQLITE_ERROR");
      expect(store.isFailure(syntax)).toBe(false);
      const constraint = thrownBy(() => writable.exec("INSERT INTO t VALUES (1)"));
      expect((constraint as { code: string }).code).toBe("SQLITE_CONSTRAINT_PRIMARYKEY");
      expect(store.isFailure(constraint)).toBe(false);

      expect(store.isFailure(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
      expect(store.isFailure(new StoreWriteError("commit failed: database or disk is full"))).toBe(true);
      expect(store.isFailure(new StoreWriteError("commit failed: x is not a function", { bug: true }))).toBe(false);
    } finally {
      readOnly.close();
      writable.close();
      await store.close();
    }
    expect(store.isFailure(new TypeError("The database connection is not open"))).toBe(true);
  });

  it("a writer batch that failed on a bug in an operation is not the store's failure", async () => {
    const store = await SqliteStore.open({ dataDir: join(root, "writer-bug") });
    try {
      const inbox = await store.createInbox({ id: "in_writerbug", name: null, tokenHash: Buffer.alloc(32), settings: {} });
      // A time that is an object: binding it in the writer thread throws a TypeError, not an SQLite error.
      const broken = {
        id: "evt_x",
        receivedAt: {},
        method: "POST",
        path: "",
        query: "",
        rawHeaders: [],
        remoteAddr: "",
        body: Buffer.from("x"),
      };
      const error = await store.appendEvent(inbox.streamId, broken as never).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(StoreWriteError);
      expect(store.isFailure(error)).toBe(false);
      // The batch rolled back; the store goes on.
      const request = { ...broken, receivedAt: 1 };
      expect((await store.appendEvent(inbox.streamId, request)).status).toBe("appended");
    } finally {
      await store.close();
    }
  });
});

describe("a real store failure is still 503 with Retry-After", () => {
  it("ingest after the data folder was deleted under the server", async () => {
    const { logger, lines } = capturingLogger();
    const server = await startTestServer({}, { logger });
    try {
      const inbox = await server.createInbox();
      expect((await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "kept" })).status).toBe(200);
      rmSync(server.dataDir, { recursive: true, force: true });
      const response = await fetch(`${server.url}/h/${inbox.id}`, { method: "POST", body: "not kept" });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(await response.json()).toEqual({
        error: { code: "store_unavailable", message: "storage is unavailable; nothing was stored" },
      });
      expect((await logLineOf(lines, response)).level).toBe(50);
    } finally {
      await server.stop();
    }
  });
});
