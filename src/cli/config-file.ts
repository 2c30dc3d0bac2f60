/*
 * The CLI's own config file (~/.config/tailhook/config.json, mode 0600): the server
 * URL and the tokens `create` received, so later commands need no flags.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface CliConfig {
  server?: string;
  inboxes?: Record<string, { token: string }>;
}

export function readCliConfig(file: string | undefined): CliConfig {
  if (!file || !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as CliConfig;
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

export function writeCliConfig(file: string, config: CliConfig): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}
