/*
 * Store.isFailure on the PostgreSQL store, over real errors from a real server: a
 * read-only transaction refusing a write, a serialization-class or connection failure
 * and an unreachable server are the database's trouble (HTTP 503: retry); a syntax
 * error, a data error and a TypeError are bugs (500); once the store closes, every
 * failure is its own. The SQLite store has the same test in store-failures.test.ts.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { PostgresStore } from "../dist/storage/postgres/postgres-store.js";
import { pgTestUrl } from "./helpers/pg.js";
import { freePort } from "./helpers/processes.js";

async function rejectionOf(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("PostgresStore.isFailure", () => {
  it("tells the database's trouble from a bug, on real errors", async () => {
    const schema = `failures_${process.pid}_${randomBytes(5).toString("hex")}`;
    const store = await PostgresStore.open({ url: pgTestUrl(), schema });
    const sql = postgres(pgTestUrl(), { max: 1, onnotice: () => undefined });
    try {
      const readOnly = await rejectionOf(sql.begin("read only", (tx) => tx`CREATE TEMP TABLE t (a int)`));
      expect((readOnly as { code: string }).code).toBe("25006");
      expect(store.isFailure(readOnly)).toBe(true);

      const syntax = await rejectionOf(sql`SELEC 1`);
      expect((syntax as { code: string }).code).toBe("42601");
      expect(store.isFailure(syntax)).toBe(false);
      const division = await rejectionOf(sql`SELECT 1 / 0`);
      expect((division as { code: string }).code).toBe("22012");
      expect(store.isFailure(division)).toBe(false);

      const nobody = postgres(`postgres://postgres@127.0.0.1:${await freePort()}/none`, { max: 1, connect_timeout: 5 });
      const unreachable = await rejectionOf(nobody`SELECT 1`);
      await nobody.end({ timeout: 1 });
      expect((unreachable as { code: string }).code).toBe("ECONNREFUSED");
      expect(store.isFailure(unreachable)).toBe(true);

      expect(store.isFailure(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
      // The postgres client's known bug, when it surfaces inside a query: its socket is gone, so it is store trouble (503).
      const clientBug = new TypeError("Cannot read properties of null (reading 'write')");
      clientBug.stack = `${clientBug.message}\n    at nextWrite (/app/node_modules/postgres/src/connection.js:255:24)`;
      expect(store.isFailure(clientBug)).toBe(true);
      // The same words from our own code are a bug.
      expect(store.isFailure(new TypeError("Cannot read properties of null (reading 'write')"))).toBe(false);
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await sql.end({ timeout: 2 });
      await store.close();
    }
    expect(store.isFailure(new TypeError("x"))).toBe(true);
  });
});
