/*
 * Starts a real tailhook server on port 0 over a real SQLite file in a temp folder,
 * in this process, for black-box HTTP tests.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startTailhook, type RunningTailhook, type StartOptions } from "../../dist/app.js";
import { loadServerConfig, type ServerFlags } from "../../dist/config.js";

export interface TestServer extends RunningTailhook {
  dataDir: string;
  createInbox(body?: Record<string, unknown>): Promise<{ id: string; token: string; ingestUrl: string; streamUrl: string }>;
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** Closes the server and removes its data folder. */
  stop(): Promise<void>;
}

/*
 * The backend under test: SQLite by default; PostgreSQL when the test run says so
 * (TAILHOOK_TEST_BACKEND=postgres, see vitest.config.ts), with a schema per data
 * folder so that a restarted server finds its data again and tests stay apart.
 */
export const testBackend = process.env.TAILHOOK_TEST_BACKEND === "postgres" ? "postgres" : "sqlite";

export function schemaFor(dataDir: string): string {
  return `t_${createHash("sha256").update(dataDir).digest("hex").slice(0, 24)}`;
}

export function backendEnv(dataDir: string): NodeJS.ProcessEnv {
  if (testBackend !== "postgres") return {};
  const url = process.env.TAILHOOK_TEST_PG_URL;
  if (!url) throw new Error("TAILHOOK_TEST_BACKEND=postgres needs TAILHOOK_TEST_PG_URL");
  return { TAILHOOK_DATABASE_URL: url, TAILHOOK_DATABASE_SCHEMA: schemaFor(dataDir) };
}

export function tempDir(prefix = "tailhook-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestServer(
  flags: ServerFlags = {},
  options: StartOptions & { dataDir?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  const config = loadServerConfig({ port: 0, data: dataDir, ...flags }, { ...backendEnv(dataDir), ...options.env });
  const running = await startTailhook(config, { logger: pino({ level: "silent" }), ...options });
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${running.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${running.adminToken}`, ...(init.headers as Record<string, string>) },
    });
  return {
    ...running,
    dataDir,
    admin,
    async createInbox(body = {}) {
      const response = await admin("/api/inboxes", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (response.status !== 201) throw new Error(`create inbox: ${response.status} ${await response.text()}`);
      return (await response.json()) as { id: string; token: string; ingestUrl: string; streamUrl: string };
    },
    async stop() {
      await running.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
