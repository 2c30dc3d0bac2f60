/*
 * The Durable Streams protocol's own conformance suite (@durable-streams/server-
 * conformance-tests, pinned), subscription tests included, against a real
 * `tailhook serve --open` child process on port 0 over a fresh SQLite file (or, in the
 * PostgreSQL test project, a fresh schema), with a short long-poll timeout so the
 * suite's long-poll cases finish quickly.
 */
import { afterAll, beforeAll } from "vitest";
import { runConformanceTests } from "@durable-streams/server-conformance-tests";
import { killAllChildren, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";
import { backendEnv } from "./helpers/server.js";

const LONG_POLL_TIMEOUT_MS = 500;
let server: ServerProcess | undefined;

beforeAll(async () => {
  const dataDir = tempDir("tailhook-conformance-");
  server = await startServerProcess({
    dataDir,
    args: ["--open", "--long-poll-timeout", String(LONG_POLL_TIMEOUT_MS)],
    env: backendEnv(dataDir),
  });
});

afterAll(async () => {
  await killAllChildren();
});

runConformanceTests({
  // Read lazily by the suite, once the server is up.
  get baseUrl() {
    if (!server) throw new Error("the server is not running");
    return server.url;
  },
  longPollTimeoutMs: LONG_POLL_TIMEOUT_MS,
  subscriptions: true,
});
