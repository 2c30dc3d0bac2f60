/*
 * PostgreSQL health follows write outcomes: a database that answers SELECT 1 but
 * refuses every write (here: made read-only for tailhook's sessions) must not look
 * healthy; health comes back once writes work again, with or without traffic.
 */
import { afterEach, describe, expect, it } from "vitest";
import postgres from "postgres";
import { createDatabase, dropDatabase, type TestDatabase } from "./helpers/pg.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitUntil } from "./helpers/wait.js";

let database: TestDatabase | undefined;
let server: TestServer | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
  if (database) await dropDatabase(database);
  database = undefined;
});

async function health(url: string): Promise<{ healthz: number; readyz: number }> {
  const [healthz, readyz] = await Promise.all([fetch(`${url}/healthz`), fetch(`${url}/readyz`)]);
  return { healthz: healthz.status, readyz: readyz.status };
}

/** Sets default_transaction_read_only for the database and drops its sessions, so the pools reconnect under it. */
async function setReadOnly(db: TestDatabase, readOnly: boolean): Promise<void> {
  const admin = postgres(db.baseUrl, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`ALTER DATABASE ${db.name} SET default_transaction_read_only = ${readOnly ? "on" : "off"}`);
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${db.name} AND pid <> pg_backend_pid()`;
  } finally {
    await admin.end({ timeout: 2 });
  }
}

describe("PostgreSQL write health", () => {
  it("a database that refuses writes: 503 + Retry-After, /healthz and /readyz 503, healthy again once writes work", async () => {
    database = await createDatabase("th_wh");
    server = await startTestServer({}, { env: { TAILHOOK_DATABASE_URL: database.url } });
    const inbox = await server.createInbox();
    const ingest = () => fetch(`${server!.url}/h/${inbox.id}`, { method: "POST", body: "x" });
    expect((await ingest()).status).toBe(200);

    await setReadOnly(database, true);
    // The first requests may meet the terminated sessions; from then on every write is refused.
    await waitUntil(
      async () => {
        const response = await ingest();
        return response.status === 503 && response.headers.get("retry-after") !== null;
      },
      "a 503 with Retry-After",
      10_000,
    );
    const refused = await ingest();
    expect({ status: refused.status, retryAfter: refused.headers.get("retry-after") }).toEqual({ status: 503, retryAfter: "1" });
    expect(await health(server.url)).toEqual({ healthz: 503, readyz: 503 });

    await setReadOnly(database, false);
    // No traffic: health must come back by itself.
    await waitUntil(async () => (await health(server!.url)).healthz === 200, "healthy after writes work again", 10_000);
    expect(await health(server.url)).toEqual({ healthz: 200, readyz: 200 });
    expect((await ingest()).status).toBe(200);
  });
});
