/* `tailhook serve`: run the server until SIGTERM or SIGINT, then drain and exit 0. */
import type { Command } from "commander";
import { loadServerConfig } from "../../config.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the tailhook server (embedded SQLite in --data)")
    .option("--port <port>", "port to listen on, 0 picks a free one (default 8080)")
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .option("--data <dir>", "data folder (default ./tailhook-data)")
    .option("--db <url>", "postgres://… to share one PostgreSQL database between processes (or DATABASE_URL)")
    .option("--public-url <url>", "base URL for the links the API returns")
    .option("--max-body-bytes <n>", "default body limit per event")
    .option("--long-poll-timeout <ms>", "how long a long-poll read waits (default 30000)")
    .option("--max-connections <n>", "open connections at most, 0 for no limit (default 10000)")
    .option("--max-connections-per-address <n>", "open connections from one address at most, 0 for no limit (default 1000)")
    .option(
      "--smtp-port <port>",
      "also take mail for <inbox-id>@any-domain on this SMTP port, 0 picks a free one (off by default; docs/email.md)",
    )
    .option("--smtp-host <host>", "address the SMTP server listens on (default: --host)")
    .option("--smtp-tls-cert <file>", "PEM certificate for SMTP STARTTLS (with --smtp-tls-key)")
    .option("--smtp-tls-key <file>", "PEM private key for SMTP STARTTLS")
    .option("--metrics-port <port>", "also serve /metrics without a token on 127.0.0.1 at this port (docs/metrics.md)")
    .option("--metrics-per-inbox", "label ingest and consumer-lag metrics by inbox (at most 100 inboxes; TAILHOOK_METRICS_PER_INBOX_LIMIT)")
    .option("--log-level <level>", "fatal, error, warn, info (default; one JSON line per request on stdout), debug, trace or silent")
    .option("--open", "let anyone create, write and read general streams without a token (local development only)")
    .option("--allow-local-webhooks", "let subscriptions send webhooks to localhost and 127.0.0.x (implied by --open)")
    .action(async (flags) => {
      const config = loadServerConfig(flags);
      // Loaded here, not at the top: the server's modules (fastify, the stores, SMTP, IMAP) would slow every other command's start.
      const { startTailhook } = await import("../../app.js");
      const running = await startTailhook(config, {
        onAdminTokenCreated: (token, file) => {
          // Shown only on a terminal: under a supervisor stderr ends up in logs, which must hold no token.
          const shown = process.stderr.isTTY ? `:\n  ${token}` : "; read it from there";
          process.stderr.write(`tailhook: created the admin token (kept in ${file}, mode 0600)${shown}\n`);
        },
      });
      const storage = config.databaseUrl ? "data in PostgreSQL" : `data in ${config.dataDir}`;
      process.stderr.write(`tailhook: listening on ${running.url} (${storage})\n`);
      if (running.metricsUrl) process.stderr.write(`tailhook: metrics on ${running.metricsUrl}/metrics\n`);
      if (running.smtpUrl) process.stderr.write(`tailhook: taking mail on ${running.smtpUrl}\n`);
      if (config.open) process.stderr.write("tailhook: --open: anyone who reaches this port may create, write and read general streams\n");
      const stop = () => {
        void running.close().then(() => process.exit(0));
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}
