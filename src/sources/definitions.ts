/*
 * Reading a source definition from the API (strictly: unknown fields are refused,
 * every id that will end up in a provider URL is validated here) and showing it
 * back without its credentials.
 */
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { TailhookError } from "../core/errors.js";
import { parseAppPrivateKey } from "./github-app-jwt.js";
import type { Inbox } from "../core/types.js";
import type { GithubHook, ImapConfig, SourceConfig, SourceCredentials, SourceDefinition, SourceKind, SourceState } from "./types.js";

export const DEFAULT_INTERVAL_SECONDS = 300;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const MAX_SOURCES_PER_INBOX = 20;

const GITHUB_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
const GITHUB_ORG = /^[A-Za-z0-9-]{1,39}$/;
/** A GitHub App's numeric id or its client id ("Iv1.…", "Iv23…"). */
const GITHUB_APP_ID = /^[A-Za-z0-9._-]{1,100}$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SECRET = /^[\x21-\x7e]{1,4096}$/;

function fail(message: string): never {
  throw new TailhookError("bad_request", message);
}

function integer(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    fail(`${name} must be an integer from ${min} to ${max}`);
  return value;
}

function secret(value: unknown, name: string): string {
  if (typeof value !== "string" || !SECRET.test(value)) fail(`${name} must be a non-empty string of printable characters`);
  return value;
}

function onlyFields(body: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) fail(`unknown field ${key}`);
}

/** https anywhere, or http to a loopback address; never credentials in the URL. */
export function parsePollUrl(value: unknown): string {
  if (typeof value !== "string") fail("url must be an http(s) URL");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail("url must be an http(s) URL");
  }
  const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback))
    fail("url must be https (http only to 127.0.0.1, ::1 or localhost)");
  if (url.username || url.password) fail("url must not carry credentials; put them in headers");
  return url.href;
}

function parseHeaders(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("headers must be an object of header names to values");
  const headers: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (!HEADER_NAME.test(name)) fail(`not a header name: ${name}`);
    if (typeof raw !== "string" || /[\r\n\0]/.test(raw) || raw.length > 8192) fail(`headers.${name} must be a single-line string`);
    headers[name.toLowerCase()] = raw;
  }
  return headers;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const LOOPBACK_HOSTS = ["127.0.0.1", "::1", "localhost"];
const MAX_CA_BYTES = 64 * 1024;

/**
 * An IMAP mailbox: TLS by default; STARTTLS (required, never opportunistic) when asked;
 * no TLS only to a loopback host, where the password does not cross a network.
 */
function parseImap(body: Record<string, unknown>): ImapConfig {
  const host = typeof body.host === "string" ? body.host.replace(/^\[(.*)\]$/, "$1") : "";
  if (!(isIP(host) !== 0 || HOSTNAME.test(host))) fail("host must be a host name or an IP address");
  const security = body.security ?? "tls";
  if (security !== "tls" && security !== "starttls" && security !== "plain") fail('security must be "tls", "starttls" or "plain"');
  if (security === "plain" && !LOOPBACK_HOSTS.includes(host))
    fail('security "plain" is allowed only to 127.0.0.1, ::1 or localhost; use "tls" or "starttls"');
  const port = integer(body.port, "port", security === "tls" ? 993 : 143, 1, 65_535);
  if (typeof body.user !== "string" || !/^[^\r\n\0]{1,320}$/.test(body.user)) fail("user must be a non-empty single-line string");
  const mailbox = body.mailbox ?? "INBOX";
  if (typeof mailbox !== "string" || !/^[^\r\n\0]{1,512}$/.test(mailbox)) fail("mailbox must be a non-empty single-line string");
  if (
    body.ca !== undefined &&
    (typeof body.ca !== "string" || !body.ca.includes("-----BEGIN CERTIFICATE-----") || body.ca.length > MAX_CA_BYTES)
  ) {
    fail("ca must be PEM certificate text");
  }
  if (body.ca !== undefined && security === "plain") fail('ca makes no sense with security "plain"');
  const withoutMessageId = body.withoutMessageId ?? "skip";
  if (withoutMessageId !== "skip" && withoutMessageId !== "append") fail('withoutMessageId must be "skip" or "append"');
  return {
    kind: "imap",
    host,
    port,
    security,
    user: body.user,
    mailbox,
    ...(body.ca !== undefined ? { ca: body.ca as string } : {}),
    withoutMessageId,
  };
}

function parseGithubHook(body: Record<string, unknown>): GithubHook {
  const targets = ["repository", "organization", "app"].filter((key) => body[key] !== undefined);
  if (targets.length !== 1) fail("a github source needs exactly one of repository (owner/repo), organization or app: true");
  if (body.app !== undefined) {
    if (body.app !== true) fail("app must be true");
    if (body.hookId !== undefined) fail("an app hook has no hookId");
    const appId = typeof body.appId === "number" && Number.isSafeInteger(body.appId) && body.appId > 0 ? String(body.appId) : body.appId;
    if (typeof appId !== "string" || !GITHUB_APP_ID.test(appId)) fail("an app hook needs appId: the GitHub App's id or client id");
    return { type: "app", appId };
  }
  const hookId = integer(body.hookId, "hookId", 0, 1, Number.MAX_SAFE_INTEGER);
  if (hookId === 0) fail("hookId is required");
  if (body.repository !== undefined) {
    const parts = typeof body.repository === "string" ? body.repository.split("/") : [];
    if (parts.length !== 2 || !parts.every((part) => GITHUB_NAME.test(part) && part !== "." && part !== "..")) {
      fail("repository must be owner/repo");
    }
    return { type: "repository", owner: parts[0]!, repo: parts[1]!, hookId };
  }
  if (typeof body.organization !== "string" || !GITHUB_ORG.test(body.organization)) fail("organization must be a GitHub organization name");
  return { type: "organization", org: body.organization, hookId };
}

/**
 * Reconciled events must carry the key webhook deliveries are deduplicated on, or
 * every reconciled copy would double a delivered event.
 */
function requireDedupe(inbox: Inbox, kind: "github" | "stripe" | "imap"): void {
  const dedupe = inbox.settings.dedupe;
  const preset = kind === "imap" ? "message-id" : kind;
  const fits =
    kind === "github"
      ? dedupe?.header === "x-github-delivery"
      : kind === "stripe"
        ? dedupe?.jsonPointer === "/id"
        : dedupe?.emailHeader === "message-id";
  if (!fits)
    fail(`a ${kind} source needs the inbox's settings.dedupe to be the "${preset}" preset, so reconciled and delivered events share a key`);
}

export function parseSourceDefinition(value: unknown, inbox: Inbox, now = Date.now()): SourceDefinition {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("the body must be a JSON object");
  const body = value as Record<string, unknown>;
  const common = ["kind", "intervalSeconds", "timeoutMs"];
  let config: SourceConfig;
  let credentials: SourceCredentials;
  switch (body.kind as SourceKind) {
    case "github": {
      onlyFields(body, [...common, "repository", "organization", "app", "appId", "privateKey", "hookId", "token", "mode"]);
      const mode = body.mode ?? "append";
      if (mode !== "append" && mode !== "redeliver") fail('mode must be "append" or "redeliver"');
      const hook = parseGithubHook(body);
      config = { kind: "github", hook, mode };
      if (hook.type === "app") {
        // An app authenticates with JWTs it signs itself: a ready JWT would expire within 10 minutes.
        if (body.token !== undefined) fail("an app hook takes appId and privateKey, not token");
        if (!parseAppPrivateKey(body.privateKey))
          fail("privateKey must be the GitHub App's RSA private key in PEM (the .pem file GitHub generated)");
        credentials = { privateKey: body.privateKey as string };
      } else {
        if (body.appId !== undefined || body.privateKey !== undefined) fail("appId and privateKey are for app: true only");
        credentials = { token: secret(body.token, "token") };
      }
      requireDedupe(inbox, "github");
      break;
    }
    case "stripe":
      onlyFields(body, [...common, "secretKey"]);
      config = { kind: "stripe" };
      credentials = { secretKey: secret(body.secretKey, "secretKey") };
      requireDedupe(inbox, "stripe");
      break;
    case "poll":
      onlyFields(body, [...common, "url", "headers"]);
      config = { kind: "poll", url: parsePollUrl(body.url) };
      credentials = { headers: parseHeaders(body.headers) };
      break;
    case "imap":
      onlyFields(body, [...common, "host", "port", "security", "user", "password", "mailbox", "ca", "withoutMessageId"]);
      config = parseImap(body);
      // Passwords may hold spaces and non-ASCII characters, unlike API tokens.
      if (typeof body.password !== "string" || !/^[^\r\n\0]{1,4096}$/.test(body.password))
        fail("password must be a non-empty single-line string");
      credentials = { password: body.password };
      requireDedupe(inbox, "imap");
      break;
    default:
      fail('kind must be "github", "stripe", "poll" or "imap"');
  }
  return {
    id: `src_${randomBytes(12).toString("hex")}`,
    inboxId: inbox.id,
    config,
    credentials,
    intervalSeconds: integer(body.intervalSeconds, "intervalSeconds", DEFAULT_INTERVAL_SECONDS, 1, 86_400),
    timeoutMs: integer(body.timeoutMs, "timeoutMs", DEFAULT_TIMEOUT_MS, 100, 120_000),
    createdAt: now,
  };
}

function configView(config: SourceConfig): Record<string, unknown> {
  switch (config.kind) {
    case "github": {
      const { hook } = config;
      const target =
        hook.type === "repository"
          ? { repository: `${hook.owner}/${hook.repo}`, hookId: hook.hookId }
          : hook.type === "organization"
            ? { organization: hook.org, hookId: hook.hookId }
            : { app: true, appId: hook.appId };
      return { ...target, mode: config.mode };
    }
    case "stripe":
      return {};
    case "poll":
      return { url: config.url };
    case "imap":
      return {
        host: config.host,
        port: config.port,
        security: config.security,
        user: config.user,
        mailbox: config.mailbox,
        ca: config.ca === undefined ? null : ("set" as const),
        withoutMessageId: config.withoutMessageId,
      };
  }
}

/** What the API shows: never a credential, only that it is set (and, for poll, which header names). */
export function sourceView(source: SourceDefinition, state: SourceState | undefined) {
  const { credentials } = source;
  return {
    id: source.id,
    inboxId: source.inboxId,
    kind: source.config.kind,
    ...configView(source.config),
    credentials: {
      ...(credentials.token !== undefined ? { token: "set" as const } : {}),
      ...(credentials.privateKey !== undefined ? { privateKey: "set" as const } : {}),
      ...(credentials.secretKey !== undefined ? { secretKey: "set" as const } : {}),
      ...(credentials.headers !== undefined ? { headers: Object.keys(credentials.headers) } : {}),
      ...(credentials.password !== undefined ? { password: "set" as const } : {}),
    },
    intervalSeconds: source.intervalSeconds,
    timeoutMs: source.timeoutMs,
    createdAt: new Date(source.createdAt).toISOString(),
    status: statusView(state),
  };
}

function iso(ms: number | undefined | null): string | null {
  return ms === undefined || ms === null ? null : new Date(ms).toISOString();
}

function statusView(state: SourceState | undefined) {
  const run = state?.lastRun ?? null;
  return {
    lastRun: run
      ? {
          startedAt: iso(run.startedAt),
          finishedAt: iso(run.finishedAt),
          listed: run.listed,
          missing: run.missing,
          appended: run.appended,
          complete: run.complete ?? true,
          ...(run.skipped !== undefined ? { skipped: run.skipped } : {}),
          error: run.error,
        }
      : null,
    ...(state?.stripeCursor
      ? { cursor: { after: state.stripeCursor.after?.id ?? null, before: state.stripeCursor.before?.id ?? null } }
      : {}),
    error: run?.error ?? null,
    failures: state?.failures ?? 0,
    recentErrors: (state?.recentErrors ?? []).map(({ at, error }) => ({ at: iso(at), error })),
    nextRunAt: state ? iso(state.nextRunAt) : null,
    rateLimitedUntil: iso(state?.rateLimitedUntil),
  };
}
