/*
 * The only reader of process.env. Command-line flags win over the environment, which
 * wins over defaults; the result is validated once and frozen.
 */
import { TailhookError } from "./core/errors.js";

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** postgres://… to use PostgreSQL (shared by many processes) instead of SQLite in dataDir. */
  readonly databaseUrl: string | undefined;
  /** A PostgreSQL schema of its own (created if missing), e.g. one per tenant or test. */
  readonly databaseSchema: string | undefined;
  /** Base of the URLs the API returns; derived from the listening address when absent. */
  readonly publicUrl: string | undefined;
  readonly adminToken: string | undefined;
  /** Anyone may create, write and read general streams without a token (local development). */
  readonly open: boolean;
  /** Subscriptions may send webhooks to localhost / 127.0.0.x (on with --open). */
  readonly allowLocalWebhooks: boolean;
  readonly maxBodyBytes: number;
  readonly longPollTimeoutMs: number;
  readonly sseKeepAliveMs: number;
  /** SSE connections are closed after this long so clients reconnect (protocol §10.2). */
  readonly sseMaxConnectionMs: number;
  readonly pruneIntervalMs: number;
  readonly logLevel: string;
  /** An idle keep-alive connection is closed after this long (longer than load balancers' idle timeouts). */
  readonly keepAliveTimeoutMs: number;
  /** A request's headers must arrive within this long (slowloris). */
  readonly headersTimeoutMs: number;
  /** A whole request, body included, must arrive within this long. */
  readonly requestTimeoutMs: number;
  /** Open connections, all addresses together; 0: no limit. */
  readonly maxConnections: number;
  /** Open connections from one address (IPv6: one /64); 0: no limit. */
  readonly maxConnectionsPerAddress: number;
  /** Where reconciliation sources reach GitHub's and Stripe's APIs (https; http only to loopback, for tests). */
  readonly githubApiUrl: string;
  readonly stripeApiUrl: string;
  /** The SMTP door (docs/email.md); undefined when mail is not taken. */
  readonly smtp: SmtpConfig | undefined;
  /** /metrics (docs/metrics.md). */
  readonly metrics: MetricsConfig;
}

export interface MetricsConfig {
  /** An open /metrics listener on 127.0.0.1 at this port (0 picks one); undefined: only the admin-token /metrics. */
  readonly port: number | undefined;
  /** Inbox ids as labels, for at most perInboxLimit inboxes (the rest share inbox="_other"). */
  readonly perInbox: boolean;
  readonly perInboxLimit: number;
}

export interface SmtpConfig {
  readonly host: string;
  /** 0 picks a free port (tests); the bound one is RunningTailhook.smtpUrl. */
  readonly port: number;
  /** PEM files for STARTTLS; STARTTLS is not offered without them. */
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  /** TAILHOOK_SMTP_AUTH=user:password: AUTH PLAIN/LOGIN required (over TLS only). */
  readonly auth: { readonly user: string; readonly password: string } | undefined;
  /** Advertised with SIZE: no message is read past this; an inbox's own limit may be lower. */
  readonly maxMessageBytes: number;
  readonly maxClients: number;
  /** An SMTP client silent for this long is disconnected (RFC 5321 §4.5.3.2 suggests minutes). */
  readonly socketTimeoutMs: number;
}

export interface ServerFlags {
  host?: string;
  port?: string | number;
  data?: string;
  db?: string;
  publicUrl?: string;
  maxBodyBytes?: string | number;
  longPollTimeout?: string | number;
  logLevel?: string;
  open?: boolean;
  maxConnections?: string | number;
  maxConnectionsPerAddress?: string | number;
  allowLocalWebhooks?: boolean;
  smtpPort?: string | number;
  smtpHost?: string;
  smtpTlsCert?: string;
  smtpTlsKey?: string;
  metricsPort?: string | number;
  metricsPerInbox?: boolean;
}

function integer(value: string | number | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new TailhookError("bad_request", `${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return parsed;
}

function isTrue(value: string | undefined): boolean {
  return ["1", "true"].includes((value ?? "").toLowerCase());
}

function url(value: string | undefined, name: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new TailhookError("bad_request", `${name} must be an http(s) URL, got ${value}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TailhookError("bad_request", `${name} must be an http(s) URL, got ${value}`);
  }
  return parsed.toString().replace(/\/+$/, "");
}

/** Where `tailhook serve` keeps its data unless told otherwise (and so where the CLI looks for its admin token). */
export const DEFAULT_DATA_DIR = "./tailhook-data";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function logLevel(value: string | undefined): string {
  if (value === undefined || value === "") return "info";
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new TailhookError("bad_request", `the log level must be one of ${LOG_LEVELS.join(", ")}, got ${value}`);
  }
  return value;
}

function databaseUrl(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^postgres(ql)?:\/\//.test(value)) throw new TailhookError("bad_request", "the database URL must start with postgres://");
  return value;
}

export function loadServerConfig(flags: ServerFlags = {}, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const adminToken = env.TAILHOOK_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new TailhookError("bad_request", "TAILHOOK_ADMIN_TOKEN must be at least 16 characters");
  }
  const open = flags.open ?? isTrue(env.TAILHOOK_OPEN);
  return Object.freeze({
    host: flags.host ?? env.TAILHOOK_HOST ?? "127.0.0.1",
    port: integer(flags.port ?? env.TAILHOOK_PORT, "port", 8080, 0, 65535),
    dataDir: flags.data ?? env.TAILHOOK_DATA ?? DEFAULT_DATA_DIR,
    databaseUrl: databaseUrl(flags.db ?? (env.TAILHOOK_DATABASE_URL || env.DATABASE_URL || undefined)),
    databaseSchema: env.TAILHOOK_DATABASE_SCHEMA || undefined,
    publicUrl: url(flags.publicUrl ?? env.TAILHOOK_PUBLIC_URL, "public URL"),
    adminToken,
    open,
    allowLocalWebhooks: open || (flags.allowLocalWebhooks ?? isTrue(env.TAILHOOK_ALLOW_LOCAL_WEBHOOKS)),
    maxBodyBytes: integer(flags.maxBodyBytes ?? env.TAILHOOK_MAX_BODY_BYTES, "max body bytes", 1024 * 1024, 1, 256 * 1024 * 1024),
    longPollTimeoutMs: integer(flags.longPollTimeout ?? env.TAILHOOK_LONG_POLL_TIMEOUT_MS, "long-poll timeout", 30_000, 10, 600_000),
    sseKeepAliveMs: integer(env.TAILHOOK_SSE_KEEPALIVE_MS, "SSE keep-alive", 15_000, 10, 600_000),
    sseMaxConnectionMs: integer(env.TAILHOOK_SSE_MAX_CONNECTION_MS, "SSE connection lifetime", 60_000, 100, 3_600_000),
    pruneIntervalMs: integer(env.TAILHOOK_PRUNE_INTERVAL_MS, "prune interval", 5_000, 10, 3_600_000),
    logLevel: logLevel(flags.logLevel ?? env.TAILHOOK_LOG_LEVEL),
    ...connectionSettings(flags, env),
    githubApiUrl: providerApiUrl(env.TAILHOOK_GITHUB_API_URL, "TAILHOOK_GITHUB_API_URL", "https://api.github.com"),
    stripeApiUrl: providerApiUrl(env.TAILHOOK_STRIPE_API_URL, "TAILHOOK_STRIPE_API_URL", "https://api.stripe.com"),
    smtp: smtpSettings(flags, env),
    metrics: metricsSettings(flags, env),
  });
}

function metricsSettings(flags: ServerFlags, env: NodeJS.ProcessEnv): MetricsConfig {
  const port = flags.metricsPort ?? env.TAILHOOK_METRICS_PORT;
  return Object.freeze({
    port: port === undefined || port === "" ? undefined : integer(port, "metrics port", 0, 0, 65535),
    perInbox: flags.metricsPerInbox ?? isTrue(env.TAILHOOK_METRICS_PER_INBOX),
    perInboxLimit: integer(env.TAILHOOK_METRICS_PER_INBOX_LIMIT, "metrics per-inbox limit", 100, 1, 10_000),
  });
}

/** The SMTP door: off unless a port is given. */
function smtpSettings(flags: ServerFlags, env: NodeJS.ProcessEnv): SmtpConfig | undefined {
  const rawPort = flags.smtpPort ?? env.TAILHOOK_SMTP_PORT;
  if (rawPort === undefined || rawPort === "") return undefined;
  const tlsCertFile = flags.smtpTlsCert ?? (env.TAILHOOK_SMTP_TLS_CERT || undefined);
  const tlsKeyFile = flags.smtpTlsKey ?? (env.TAILHOOK_SMTP_TLS_KEY || undefined);
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    throw new TailhookError("bad_request", "--smtp-tls-cert and --smtp-tls-key go together");
  }
  const authSpec = env.TAILHOOK_SMTP_AUTH || undefined;
  let auth: SmtpConfig["auth"];
  if (authSpec !== undefined) {
    const colon = authSpec.indexOf(":");
    if (colon <= 0 || colon === authSpec.length - 1) throw new TailhookError("bad_request", "TAILHOOK_SMTP_AUTH must be user:password");
    // A password must never cross the network in clear text.
    if (tlsCertFile === undefined)
      throw new TailhookError("bad_request", "TAILHOOK_SMTP_AUTH needs --smtp-tls-cert and --smtp-tls-key (AUTH only over TLS)");
    auth = Object.freeze({ user: authSpec.slice(0, colon), password: authSpec.slice(colon + 1) });
  }
  return Object.freeze({
    host: flags.smtpHost ?? env.TAILHOOK_SMTP_HOST ?? flags.host ?? env.TAILHOOK_HOST ?? "127.0.0.1",
    port: integer(rawPort, "SMTP port", 25, 0, 65535),
    tlsCertFile,
    tlsKeyFile,
    auth,
    maxMessageBytes: integer(env.TAILHOOK_SMTP_MAX_MESSAGE_BYTES, "SMTP max message bytes", 25 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    maxClients: integer(env.TAILHOOK_SMTP_MAX_CLIENTS, "SMTP max clients", 1000, 1, 1_000_000),
    socketTimeoutMs: integer(env.TAILHOOK_SMTP_SOCKET_TIMEOUT_MS, "SMTP socket timeout", 300_000, 1000, 3_600_000),
  });
}

/** A provider's API base for reconciliation sources: https, or http to a loopback address (a test server). */
function providerApiUrl(value: string | undefined, name: string, fallback: string): string {
  const parsed = url(value, name);
  if (parsed === undefined) return fallback;
  const { protocol, hostname } = new URL(parsed);
  if (protocol === "http:" && !["127.0.0.1", "[::1]", "localhost"].includes(hostname)) {
    throw new TailhookError("bad_request", `${name} must be https (http only to 127.0.0.1, ::1 or localhost), got ${value}`);
  }
  return parsed;
}

/** Timeouts and limits of the HTTP connection edge (see docs/operations.md). */
function connectionSettings(flags: ServerFlags, env: NodeJS.ProcessEnv) {
  const headersTimeoutMs = integer(env.TAILHOOK_HEADERS_TIMEOUT_MS, "headers timeout", 20_000, 100, 60_000);
  const requestTimeoutMs = integer(env.TAILHOOK_REQUEST_TIMEOUT_MS, "request timeout", 120_000, headersTimeoutMs, 3_600_000);
  return {
    keepAliveTimeoutMs: integer(env.TAILHOOK_KEEP_ALIVE_TIMEOUT_MS, "keep-alive timeout", 75_000, 1000, 3_600_000),
    headersTimeoutMs,
    requestTimeoutMs,
    maxConnections: integer(flags.maxConnections ?? env.TAILHOOK_MAX_CONNECTIONS, "max connections", 10_000, 0, 1_000_000),
    maxConnectionsPerAddress: integer(
      flags.maxConnectionsPerAddress ?? env.TAILHOOK_MAX_CONNECTIONS_PER_ADDRESS,
      "max connections per address",
      1_000,
      0,
      1_000_000,
    ),
  };
}

export interface ClientFlags {
  server?: string;
  token?: string;
}

export interface ClientEnvironment {
  server: string | undefined;
  token: string | undefined;
  configFile: string | undefined;
  home: string | undefined;
  /** TAILHOOK_SIGN_SECRET: the whsec_ key forward/replay re-sign with (kept off the command line, where `ps` shows it). */
  signSecret: string | undefined;
  /** The data folder a local `tailhook serve` uses (TAILHOOK_DATA), where its admin token lies. */
  dataDir: string;
  /** NO_COLOR set and not empty (no-color.org): no colour even on a terminal. */
  noColor: boolean;
}

/** What the CLI takes from its flags and the environment (the config file comes after). */
export function loadClientEnvironment(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ClientEnvironment {
  const configHome = env.XDG_CONFIG_HOME || (env.HOME ? `${env.HOME}/.config` : undefined);
  return {
    server: url(flags.server ?? env.TAILHOOK_URL, "server URL"),
    token: flags.token ?? (env.TAILHOOK_TOKEN || undefined),
    configFile: env.TAILHOOK_CONFIG || (configHome ? `${configHome}/tailhook/config.json` : undefined),
    home: env.HOME,
    signSecret: env.TAILHOOK_SIGN_SECRET || undefined,
    dataDir: env.TAILHOOK_DATA ?? DEFAULT_DATA_DIR,
    noColor: (env.NO_COLOR ?? "") !== "",
  };
}
