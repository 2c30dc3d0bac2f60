/*
 * `tailhook inbox show|rename|set|delete`: one inbox, given by id or name. `show`
 * works with the inbox's own token; the others change it and need the admin token.
 */
import type { Command } from "commander";
import type { InboxInfo } from "../../client/client.js";
import { paletteFor } from "../colour.js";
import { savedInboxes, serverKey, updateCliConfig } from "../config-file.js";
import { connect, requireAdminToken, type Connection } from "../connection.js";
import { UsageError } from "../errors.js";
import { resolveInbox, resolveInboxId } from "../resolve-inbox.js";

function printInbox(inbox: InboxInfo): void {
  const paint = paletteFor(process.stdout);
  const { expectEvery } = inbox.settings;
  const silence =
    expectEvery === undefined
      ? "-"
      : inbox.silent
        ? paint.yellow(`silent since ${inbox.silentSince} (expects an event every ${expectEvery} s)`)
        : `no (expects an event every ${expectEvery} s)`;
  process.stdout.write(
    [
      `inbox       ${paint.bold(inbox.id)}${inbox.name ? ` (${inbox.name})` : ""}`,
      `ingest URL  ${inbox.ingestUrl}`,
      `stream URL  ${inbox.streamUrl}`,
      `created     ${inbox.createdAt}`,
      `events      ${inbox.lastSeq}${inbox.lastEventAt ? `, the last at ${inbox.lastEventAt}` : ""}`,
      `silent      ${silence}`,
      `settings    ${JSON.stringify(inbox.settings)}`,
      "",
    ].join("\n"),
  );
}

function printResult(inbox: InboxInfo, json: boolean | undefined): void {
  if (json) process.stdout.write(`${JSON.stringify(inbox)}\n`);
  else printInbox(inbox);
}

/** The value of `key=value`: JSON when it parses (numbers, null, objects), else the text as it is. */
function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The settings patch for `a=1 b.c=2`: top-level keys go as they are (null removes
 * one); a dotted key changes one field of the current object, since the server
 * replaces a nested object whole. Verify secrets show as a count: left out, they stay.
 */
export function settingsPatch(assignments: string[], current: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const assignment of assignments) {
    const equals = assignment.indexOf("=");
    if (equals < 1) throw new UsageError(`settings are given as key=value (e.g. expectEvery=3600), got ${JSON.stringify(assignment)}`);
    const path = assignment.slice(0, equals).split(".");
    const value = parseValue(assignment.slice(equals + 1));
    const top = path[0]!;
    if (path.length === 1) {
      patch[top] = value;
      continue;
    }
    if (!(top in patch)) {
      const base = isObject(current[top]) ? structuredClone(current[top]) : {};
      if (top === "verify" && typeof base.secrets === "number") delete base.secrets;
      patch[top] = base;
    }
    let target = patch[top];
    for (const key of path.slice(1, -1)) {
      if (!isObject(target)) throw new UsageError(`${assignment}: ${top} is not an object`);
      target = isObject(target[key]) ? target[key] : (target[key] = {});
    }
    if (!isObject(target)) throw new UsageError(`${assignment}: ${top} is not an object`);
    target[path.at(-1)!] = value;
  }
  return patch;
}

async function adminOnInbox(command: Command, ref: string, name: string): Promise<{ connection: Connection; id: string }> {
  const base = requireAdminToken(connect(command.optsWithGlobals()), name);
  const id = await resolveInboxId(base, ref);
  return { connection: requireAdminToken(base, name, id), id };
}

export function registerInboxManagement(program: Command): void {
  const inbox = program.command("inbox").description("show, rename, change or delete one inbox (by id or name)");

  inbox
    .command("show <inbox>")
    .description("print the inbox: URLs, event count, last event, silence, settings")
    .option("--json", "print the API's JSON object")
    .action(async (ref: string, flags: { json?: boolean }, command: Command) => {
      const connection = await resolveInbox(connect(command.optsWithGlobals()), ref);
      printResult(await connection.client.getInbox(connection.inboxId!), flags.json);
    });

  inbox
    .command("rename <inbox> <new-name>")
    .description("give the inbox another name (admin token)")
    .option("--json", "print the API's JSON object")
    .action(async (ref: string, newName: string, flags: { json?: boolean }, command: Command) => {
      const { connection, id } = await adminOnInbox(command, ref, "inbox rename");
      const updated = await connection.client.updateInbox(id, { name: newName });
      if (savedInboxes(connection.config, connection.server)[id]) {
        updateCliConfig(connection.configFile, (config) => {
          const saved = config.servers[serverKey(connection.server)]?.inboxes[id];
          if (saved) saved.name = updated.name;
        });
      }
      printResult(updated, flags.json);
    });

  inbox
    .command("set <inbox> <key=value...>")
    .description("change settings, e.g. expectEvery=3600 retention.maxEvents=1000 maxBodyBytes=null (admin token)")
    .option("--json", "print the API's JSON object")
    .action(async (ref: string, assignments: string[], flags: { json?: boolean }, command: Command) => {
      const { connection, id } = await adminOnInbox(command, ref, "inbox set");
      const current = await connection.client.getInbox(id);
      const settings = settingsPatch(assignments, current.settings as Record<string, unknown>);
      printResult(await connection.client.updateInbox(id, { settings }), flags.json);
    });

  inbox
    .command("delete <inbox>")
    .description("delete the inbox with all its events and consumers (admin token; needs --yes)")
    .option("--yes", "really delete it")
    .action(async (ref: string, flags: { yes?: boolean }, command: Command) => {
      if (!flags.yes) throw new UsageError(`inbox delete removes ${ref} with all its events for good; add --yes to do it`);
      const { connection, id } = await adminOnInbox(command, ref, "inbox delete");
      await connection.client.deleteInbox(id);
      if (savedInboxes(connection.config, connection.server)[id]) {
        updateCliConfig(connection.configFile, (config) => {
          delete config.servers[serverKey(connection.server)]?.inboxes[id];
        });
      }
      process.stdout.write(`deleted inbox ${id}\n`);
    });
}
