/*
 * Puts a running tailhook together: the store, the wake-ups, the access rules and the
 * HTTP server, and takes them apart again in reverse order. The `serve` command and
 * the tests both start tailhook through here.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import type { ServerConfig } from "./config.js";
import { newToken } from "./core/ids.js";
import { Authorizer } from "./http/auth.js";
import { buildHttpServer } from "./http/server.js";
import type { RunningSmtpDoor } from "./email/smtp-door.js";
import { StreamGrants } from "./http/stream-grants.js";
import { LiveStreams } from "./live/follow.js";
import { StreamWaiters } from "./live/stream-waiters.js";
import { guardProcessErrors } from "./process-guards.js";
import { ReleaserStack } from "./shutdown.js";
import { followLeadership } from "./subscriptions/follow-leadership.js";
import { startSources, type SourceOptions } from "./sources/start.js";
import { PostgresStore } from "./storage/postgres/postgres-store.js";
import { SqliteStore } from "./storage/sqlite/sqlite-store.js";
import type { Store } from "./storage/store.js";
import type { WebhookResolver } from "./subscriptions/delivery.js";
import { startMetrics } from "./metrics/start.js";

export interface RunningTailhook {
  url: string;
  /** smtp://host:port when the SMTP door is on (serve --smtp-port). */
  smtpUrl?: string;
  /** http://127.0.0.1:port of the open metrics listener (serve --metrics-port). */
  metricsUrl?: string;
  store: Store;
  adminToken: string;
  /** Stops accepting, answers what is in flight, ends live readers, closes the store. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Use this store instead of opening the SQLite file in the data folder (tests). */
  store?: Store;
  /** Told once when an admin token was generated. */
  onAdminTokenCreated?: (token: string, file: string) => void;
  /** Resolves subscription webhook hosts instead of DNS (tests: no real lookups). */
  webhookResolver?: WebhookResolver;
  /** Reconciliation source limits (tests: a small Stripe cap). */
  sources?: SourceOptions;
  /** Keys a snapshot page looks at, at most (tests: small pages, so a snapshot has many). */
  snapshotPageKeys?: number;
}

const SHUTDOWN_GRACE_MS = 10_000;
const TAIL_RECHECK_MS = 1000;

/** The admin token: from the config, else from the data folder, else a new one saved there (0600). */
export function resolveAdminToken(config: ServerConfig, onCreated?: (token: string, file: string) => void): string {
  if (config.adminToken) return config.adminToken;
  const file = join(config.dataDir, "admin-token");
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = newToken("tha");
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  onCreated?.(token, file);
  return token;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Stops accepting, lets requests in flight finish, and drops connections as they go idle. */
async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  server.closeIdleConnections();
  await closed;
  clearInterval(sweep);
  clearTimeout(force);
}

/** The one place a backend is chosen. */
async function openStore(config: ServerConfig, logger: Logger): Promise<Store> {
  if (config.databaseUrl) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    return PostgresStore.open({
      url: config.databaseUrl,
      pruneIntervalMs: config.pruneIntervalMs,
      ...(config.databaseSchema ? { schema: config.databaseSchema } : {}),
    });
  }
  return SqliteStore.open({ dataDir: config.dataDir, pruneIntervalMs: config.pruneIntervalMs, logger });
}

/*
 * For stores shared by several processes: notifications of other processes' commits
 * may be lost (a dropped LISTEN connection), so the streams readers wait on are
 * re-checked every second. Returns the releaser that stops it.
 */
function recheckTails(store: Store, waiters: StreamWaiters, logger: Logger): () => void {
  let running = false;
  const timer = setInterval(() => {
    const streamIds = waiters.streamIds();
    if (running || streamIds.length === 0 || !store.getTails) return;
    running = true;
    store
      .getTails(streamIds)
      .then((tails) => waiters.notify(tails))
      .catch((error: unknown) => logger.debug({ err: error }, "tail re-check failed"))
      .finally(() => (running = false));
  }, TAIL_RECHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export async function startTailhook(config: ServerConfig, options: StartOptions = {}): Promise<RunningTailhook> {
  const logger = options.logger ?? pino({ level: config.logLevel });
  const releasers = new ReleaserStack();
  let shuttingDown = false;
  try {
    const opened = options.store ?? (await openStore(config, logger));
    releasers.push("store", () => opened.close());
    releasers.push("process guard", guardProcessErrors(opened, logger));
    const { metrics, store, listener: metricsListener } = await startMetrics(opened, config, releasers);
    const adminToken = resolveAdminToken(config, options.onAdminTokenCreated);

    const waiters = new StreamWaiters();
    store.onCommit((tails, detail) => waiters.notify(tails, detail));
    if (store.getTails) releasers.push("tail re-check", recheckTails(store, waiters, logger));
    let listening = "";
    const { app, server, subscriptions } = buildHttpServer({
      store,
      auth: new Authorizer(adminToken),
      grants: store.general ? new StreamGrants(store.general) : undefined,
      waiters,
      live: new LiveStreams(store, waiters, options.snapshotPageKeys),
      config,
      logger,
      baseUrl: () => config.publicUrl ?? listening,
      isShuttingDown: () => shuttingDown,
      metrics,
      ...(options.webhookResolver ? { resolveWebhookHost: options.webhookResolver } : {}),
      ...(options.snapshotPageKeys ? { snapshotPageKeys: options.snapshotPageKeys } : {}),
    });
    await app.ready();
    await listen(server, config.host, config.port);
    const address = server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    listening = `http://${host}:${address.port}`;
    releasers.push("http", async () => {
      await closeServer(server);
      await app.close();
    });
    releasers.push("live readers", () => waiters.shutdown());
    if (subscriptions) {
      // A shared store (PostgreSQL) has several processes: only its leader runs them.
      const leadership = store.leadership?.("subscriptions", (error) =>
        logger.debug({ err: error }, "subscription leadership check failed"),
      );
      if (leadership) {
        releasers.push("subscriptions", await followLeadership(subscriptions, leadership, logger));
      } else {
        await subscriptions.lead();
        releasers.push("subscriptions", () => subscriptions.close());
      }
    }
    // Reconciliation sources (src/sources): on a shared store, only the leader of "sources" runs them.
    if (store.general) releasers.push("sources", await startSources(store, store.general, config, logger, options.sources));
    // Pushed after "http", so released before it: mail stops first, the store is still open for its last commits.
    let smtp: RunningSmtpDoor | undefined;
    if (config.smtp) {
      // smtp-server is loaded only when the door is open: most servers take no mail.
      const { startSmtpDoor } = await import("./email/smtp-door.js");
      const door = await startSmtpDoor({ store, config: config.smtp, defaultMaxBodyBytes: config.maxBodyBytes, logger, metrics });
      releasers.push("smtp", () => door.close());
      smtp = door;
    }
    logger.info({ url: listening, dataDir: options.store ? undefined : config.dataDir }, "tailhook is listening");

    let closing: Promise<void> | undefined;
    return {
      url: listening,
      ...(smtp ? { smtpUrl: smtp.url } : {}),
      ...(metricsListener ? { metricsUrl: metricsListener.url } : {}),
      store,
      adminToken,
      close() {
        closing ??= (async () => {
          shuttingDown = true;
          await releasers.releaseAll((name, error) => logger.error({ err: error, releaser: name }, "shutdown step failed"));
          logger.info("tailhook stopped");
        })();
        return closing;
      },
    };
  } catch (error) {
    await releasers.releaseAll(() => undefined);
    throw error;
  }
}
