import { defineConfig } from "vitest/config";

/*
 * Two projects: every test on the embedded SQLite store, and — when
 * TAILHOOK_TEST_PG_URL names a PostgreSQL database — the in-process HTTP suites and
 * the PostgreSQL-only suites again on PostgreSQL. Without the URL the PostgreSQL
 * project is left out, and we say so; under CI=true that is an error instead, so a CI
 * run can never pass with the PostgreSQL half silently missing.
 */
const pgUrl = process.env.TAILHOOK_TEST_PG_URL;
const postgresOnly = ["test/postgres-*.test.ts"];
const onBothBackends = [
  "test/ingest.test.ts",
  "test/reads.test.ts",
  "test/api.test.ts",
  "test/consumers.test.ts",
  "test/websocket.test.ts",
  "test/websocket-streams.test.ts",
  "test/conformance.test.ts",
  "test/general-streams.test.ts",
  "test/state-streams.test.ts",
  "test/key-frame-oracle.test.ts",
  "test/inbox-key-frames.test.ts",
  "test/durable-streams-client.test.ts",
  "test/prune-race.test.ts",
  "test/inbox-delete-wakes.test.ts",
  "test/inbox-replies.test.ts",
  "test/stream-names.test.ts",
  "test/sources.test.ts",
  "test/dedupe.test.ts",
  "test/verify.test.ts",
  "test/smtp.test.ts",
  "test/imap-source.test.ts",
  "test/follow.test.ts",
  "test/live-recent-tails.test.ts",
  "test/metrics.test.ts",
  "test/error-funnel.test.ts",
  "test/openapi.test.ts",
  "test/silence.test.ts",
  "test/compaction.test.ts",
  "test/client-recovery.test.ts",
  "test/offline-consumer.test.ts",
];

if (!pgUrl && process.env.CI === "true") {
  throw new Error(
    "CI=true but TAILHOOK_TEST_PG_URL is not set: the PostgreSQL tests would not run. Start PostgreSQL and set it (.ci/run does both).",
  );
}
if (!pgUrl) {
  console.warn("\n*** PostgreSQL tests NOT run: set TAILHOOK_TEST_PG_URL=postgres://… (see .ci/run) to run them. ***\n");
}

const shared = { testTimeout: 60_000, hookTimeout: 30_000, pool: "forks" as const };

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: "sqlite", include: ["test/**/*.test.ts"], exclude: postgresOnly } },
      ...(pgUrl
        ? [
            {
              test: {
                ...shared,
                name: "postgres",
                include: [...onBothBackends, ...postgresOnly],
                env: { TAILHOOK_TEST_BACKEND: "postgres", TAILHOOK_TEST_PG_URL: pgUrl },
              },
            },
          ]
        : []),
    ],
  },
});
