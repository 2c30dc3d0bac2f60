/*
 * The CLI's own config file (~/.config/tailhook/config.json, mode 0600): the servers
 * it has used and, per server, the tokens `create` received, so later commands need
 * no flags. `current` is the server commands use when neither --server nor
 * TAILHOOK_URL names one. The first format (one `server`, one `inboxes` map) is still
 * read, as that server's entry; the next write turns it into this one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface SavedInbox {
  token: string;
  /** The name it had when saved, so it can be addressed by name without the admin token. */
  name?: string | null;
}

export interface SavedServer {
  inboxes: Record<string, SavedInbox>;
}

export interface CliConfig {
  current?: string;
  servers: Record<string, SavedServer>;
}

interface LegacyConfig {
  server?: string;
  inboxes?: Record<string, SavedInbox>;
}

/** Server URLs as keys: without a trailing slash, so http://h:1/ and http://h:1 are one server. */
export function serverKey(server: string): string {
  return server.replace(/\/+$/, "");
}

function fromDisk(raw: unknown, file: string): CliConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`cannot read ${file}: not a JSON object`);
  const value = raw as Partial<CliConfig> & LegacyConfig;
  const servers: Record<string, SavedServer> = {};
  for (const [url, entry] of Object.entries(value.servers ?? {})) servers[serverKey(url)] = { inboxes: { ...entry?.inboxes } };
  let current = value.current === undefined ? undefined : serverKey(value.current);
  if (value.server !== undefined || value.inboxes !== undefined) {
    // The first format: its inboxes belong to its one server (the default one if it named none).
    const legacy = serverKey(value.server ?? "http://127.0.0.1:8080");
    servers[legacy] = { inboxes: { ...value.inboxes, ...servers[legacy]?.inboxes } };
    current ??= legacy;
  }
  return { current, servers };
}

export function readCliConfig(file: string | undefined): CliConfig {
  if (!file || !existsSync(file)) return { servers: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  return fromDisk(raw, file);
}

export function writeCliConfig(file: string, config: CliConfig): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

/** Re-reads the file and applies `change` to it, so two commands run one after the other both keep theirs. */
export function updateCliConfig(file: string | undefined, change: (config: CliConfig) => void): void {
  if (!file) return;
  const config = readCliConfig(file);
  change(config);
  writeCliConfig(file, config);
}

export function savedInboxes(config: CliConfig, server: string): Record<string, SavedInbox> {
  return config.servers[serverKey(server)]?.inboxes ?? {};
}
