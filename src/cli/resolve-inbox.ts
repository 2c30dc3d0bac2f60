/*
 * Inboxes on the command line are given by id or by name. A name is looked up in the
 * server's list (which needs the admin token), else among the inboxes the config file
 * saved for this server; a name two inboxes share is refused, naming both ids.
 */
import { TailhookHttpError } from "../client/errors.js";
import type { InboxInfo } from "../client/client.js";
import { savedInboxes } from "./config-file.js";
import { describeServer, forInbox, type Connection } from "./connection.js";
import { CliError } from "./errors.js";

function ambiguous(connection: Connection, name: string, ids: string[], where: string): CliError {
  return new CliError(
    `${ids.length} inboxes on ${describeServer(connection)} are named "${name}"${where} (${ids.join(", ")}); give the id instead`,
  );
}

function refused(error: unknown): boolean {
  return error instanceof TailhookHttpError && (error.status === 401 || error.status === 403 || error.status === 404);
}

/**
 * Whether `ref` is the id of an inbox this token may read. "unreachable": the server
 * did not answer, so no name can be looked up either; `ref` is taken as an id, and a
 * command that rides out outages (tail, forward) starts anyway and retries.
 */
async function isInboxId(connection: Connection, ref: string): Promise<boolean | "unreachable"> {
  if (connection.token === undefined) return false;
  try {
    await connection.client.getInbox(ref);
    return true;
  } catch (error) {
    if (refused(error)) return false;
    if (!(error instanceof TailhookHttpError)) return "unreachable";
    throw error;
  }
}

/** The server's inboxes, or undefined when this token may not list them. */
async function listIfAllowed(connection: Connection): Promise<InboxInfo[] | undefined> {
  if (connection.token === undefined) return undefined;
  try {
    return await connection.client.listInboxes();
  } catch (error) {
    if (error instanceof TailhookHttpError && (error.status === 401 || error.status === 403)) return undefined;
    throw error;
  }
}

/** The id of the inbox `ref` names (an id or a name). */
export async function resolveInboxId(base: Connection, ref: string): Promise<string> {
  const saved = savedInboxes(base.config, base.server);
  if (saved[ref]) return ref;
  // An id is the common case: one cheap lookup before listing every inbox for a name.
  if ((await isInboxId(base, ref)) !== false) return ref;
  const listed = await listIfAllowed(base);
  if (listed) {
    if (listed.some((inbox) => inbox.id === ref)) return ref;
    const named = listed.filter((inbox) => inbox.name === ref).map((inbox) => inbox.id);
    if (named.length > 1) throw ambiguous(base, ref, named, "");
    if (named.length === 1) return named[0]!;
    throw new CliError(`${describeServer(base)} has no inbox with the id or name "${ref}"`);
  }
  const savedNamed = Object.entries(saved)
    .filter(([, inbox]) => inbox.name === ref)
    .map(([id]) => id);
  if (savedNamed.length > 1) throw ambiguous(base, ref, savedNamed, ` in ${base.configFile}`);
  return savedNamed[0] ?? ref;
}

/** The connection for the inbox `ref` names, with the token to read it. */
export async function resolveInbox(base: Connection, ref: string): Promise<Connection> {
  return forInbox(base, await resolveInboxId(base, ref));
}
