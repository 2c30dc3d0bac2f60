/*
 * Which server and token a command uses, and where each came from (errors name both):
 * the server from --server, TAILHOOK_URL, the config file's current server, else
 * http://127.0.0.1:8080; the token from --token, TAILHOOK_TOKEN, the inbox token the
 * config file saved for that inbox on that server, else the admin token a local
 * `tailhook serve` keeps in ./tailhook-data/admin-token ($TAILHOOK_DATA).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TailhookClient } from "../client/client.js";
import { loadClientEnvironment, type ClientFlags } from "../config.js";
import { readCliConfig, savedInboxes, serverKey, type CliConfig } from "./config-file.js";
import { CliError } from "./errors.js";

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

export type ServerSource = "--server" | "TAILHOOK_URL" | "config file" | "default";

export type TokenSource =
  { kind: "flag" } | { kind: "env" } | { kind: "config"; inboxId: string } | { kind: "admin-file" } | { kind: "none" };

export interface Connection {
  server: string;
  serverSource: ServerSource;
  token: string | undefined;
  tokenSource: TokenSource;
  client: TailhookClient;
  config: CliConfig;
  configFile: string | undefined;
  /** Where a local server's admin token would be (absolute, for messages). */
  adminTokenFile: string;
  /** The inbox this connection's token was chosen for, if any. */
  inboxId?: string;
  /** The command needs the admin token (create, list, inbox rename/set/delete). */
  needsAdmin?: boolean;
}

/** The connection the command is using, so the top-level error report can name its server and token. */
let active: Connection | undefined;

export function activeConnection(): Connection | undefined {
  return active;
}

function readAdminToken(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8").trim() || undefined : undefined;
}

function withToken(base: Connection, token: string | undefined, tokenSource: TokenSource, inboxId?: string): Connection {
  active = { ...base, token, tokenSource, inboxId, client: new TailhookClient({ server: base.server, token }) };
  return active;
}

/** The server, and the token given by flag or environment, else the local admin token. */
export function connect(flags: ClientFlags): Connection {
  const environment = loadClientEnvironment(flags);
  const config = readCliConfig(environment.configFile);
  const serverSource: ServerSource =
    flags.server !== undefined
      ? "--server"
      : environment.server !== undefined
        ? "TAILHOOK_URL"
        : config.current
          ? "config file"
          : "default";
  const server = serverKey(environment.server ?? config.current ?? DEFAULT_SERVER);
  const adminTokenFile = resolve(join(environment.dataDir, "admin-token"));
  const base: Connection = {
    server,
    serverSource,
    token: undefined,
    tokenSource: { kind: "none" },
    client: new TailhookClient({ server }),
    config,
    configFile: environment.configFile,
    adminTokenFile,
  };
  if (environment.token !== undefined) return withToken(base, environment.token, { kind: flags.token !== undefined ? "flag" : "env" });
  const admin = readAdminToken(adminTokenFile);
  return withToken(base, admin, admin === undefined ? { kind: "none" } : { kind: "admin-file" });
}

/** For commands on one inbox: a flag or environment token wins, then the token saved for it. */
export function forInbox(base: Connection, inboxId: string): Connection {
  if (base.tokenSource.kind === "flag" || base.tokenSource.kind === "env") return withToken(base, base.token, base.tokenSource, inboxId);
  const saved = savedInboxes(base.config, base.server)[inboxId];
  if (saved) return withToken(base, saved.token, { kind: "config", inboxId }, inboxId);
  if (base.token !== undefined) return withToken(base, base.token, base.tokenSource, inboxId);
  const elsewhere = Object.entries(base.config.servers)
    .filter(([server, entry]) => server !== base.server && entry.inboxes[inboxId])
    .map(([server]) => server);
  const hint =
    elsewhere.length > 0
      ? `; ${base.configFile} has a token for it under ${elsewhere.join(", ")}: use --server`
      : "; is the id right? (tailhook list shows them, with the admin token)";
  throw new CliError(
    `no token for inbox ${inboxId} on ${describeServer(base)}: none saved for it in ${base.configFile ?? "the config file"}, no --token or TAILHOOK_TOKEN, no admin token at ${base.adminTokenFile}${hint}`,
  );
}

/** For admin commands (on `inboxId`, if given): refuses to start without a token that could be the admin token. */
export function requireAdminToken(connection: Connection, command: string, inboxId?: string): Connection {
  if (connection.tokenSource.kind !== "none") {
    active = { ...connection, inboxId, needsAdmin: true };
    return active;
  }
  throw new CliError(
    `${command} needs the admin token of ${describeServer(connection)}: no --token, no TAILHOOK_TOKEN, and no admin token at ${connection.adminTokenFile} (run it where tailhook serve keeps its data, or set TAILHOOK_DATA)`,
  );
}

export function describeServer(connection: Connection): string {
  if (connection.serverSource === "default") return `${connection.server} (the default server)`;
  const from = connection.serverSource === "config file" ? `the config file ${connection.configFile}` : connection.serverSource;
  return `${connection.server} (from ${from})`;
}

export function describeToken(connection: Connection): string {
  const source = connection.tokenSource;
  switch (source.kind) {
    case "flag":
      return "the token from --token";
    case "env":
      return "the token from TAILHOOK_TOKEN";
    case "config":
      return `the inbox token saved for ${source.inboxId} in ${connection.configFile}`;
    case "admin-file":
      return `the admin token from ${connection.adminTokenFile}`;
    case "none":
      return "no token";
  }
}
