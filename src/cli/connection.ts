/*
 * Which server and token a command uses: flags, then TAILHOOK_URL / TAILHOOK_TOKEN,
 * then the CLI config file, then the local defaults (a server on 127.0.0.1:8080 and
 * the admin token in ./tailhook-data, as `tailhook serve` leaves them).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TailhookClient } from "../client/client.js";
import { loadClientEnvironment, type ClientFlags } from "../config.js";
import { readCliConfig, type CliConfig } from "./config-file.js";

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

export interface Connection {
  server: string;
  client: TailhookClient;
  config: CliConfig;
  configFile: string | undefined;
}

function localAdminToken(dataDir: string): string | undefined {
  const file = join(dataDir, "admin-token");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/** For admin commands (create, list); `inboxId` picks that inbox's saved token. */
export function connect(flags: ClientFlags, inboxId?: string): Connection {
  const environment = loadClientEnvironment(flags);
  const config = readCliConfig(environment.configFile);
  const server = environment.server ?? config.server ?? DEFAULT_SERVER;
  const savedInboxToken = inboxId ? config.inboxes?.[inboxId]?.token : undefined;
  const token = environment.token ?? savedInboxToken ?? localAdminToken(environment.dataDir);
  return { server, client: new TailhookClient({ server, token }), config, configFile: environment.configFile };
}
