/*
 * Turns whatever ended a command into its one stderr line and exit code. A refusal
 * names the server and where the token came from, with the likely reason for that
 * combination: a mistyped id, a deleted inbox, a config file pointing at another
 * server and a missing admin token each read differently.
 */
import { CommanderError } from "commander";
import { TailhookHttpError } from "../client/errors.js";
import { TailhookError } from "../core/errors.js";
import { activeConnection, describeServer, describeToken, type Connection } from "./connection.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

function refusalHint(connection: Connection): string {
  const inbox = connection.inboxId;
  switch (connection.tokenSource.kind) {
    case "config":
      return `the inbox may have been deleted, or ${connection.server} is not the server that created it`;
    case "admin-file":
      return `it is not this server's admin token (does the server use another data folder, or TAILHOOK_ADMIN_TOKEN?)`;
    case "none":
      return "this needs a token: --token, TAILHOOK_TOKEN, or the admin token file";
    default:
      if (connection.needsAdmin) return "this command needs the admin token, not an inbox token";
      return inbox
        ? `it is neither the admin token nor inbox ${inbox}'s token (a mistyped id, a deleted inbox, or another server's token?)`
        : "this command needs the admin token, not an inbox token";
  }
}

function describeHttp(error: TailhookHttpError, connection: Connection | undefined): string {
  if (!connection) return `server said ${error.status}: ${error.message}`;
  const server = describeServer(connection);
  if (error.status === 401 || error.status === 403) {
    return `${server} refused ${describeToken(connection)} (${error.status}): ${refusalHint(connection)}`;
  }
  const about = error.status === 404 && connection.inboxId ? ` (inbox ${connection.inboxId})` : "";
  return `${server} answered ${error.status}: ${error.message}${about}`;
}

/** fetch's own failure ("fetch failed"), whose cause says what went wrong on the network. */
function networkCause(error: unknown): { code?: string; message?: string } | undefined {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return error instanceof TypeError && cause && (cause.code || cause.message) ? cause : undefined;
}

export function describeFailure(error: unknown, usageHint: string): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof CommanderError) {
    const message = error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
    return { message: `${message} (see ${usageHint})`, exitCode: EXIT_USAGE };
  }
  const connection = activeConnection();
  if (error instanceof TailhookHttpError) return { message: describeHttp(error, connection), exitCode: EXIT_FAILURE };
  // Refused before any request: a malformed URL, consumer name or setting on the command line.
  if (error instanceof TailhookError) return { message: error.message, exitCode: EXIT_USAGE };
  const cause = networkCause(error);
  if (cause) {
    const where = connection ? describeServer(connection) : "the server";
    return { message: `cannot reach ${where}: ${cause.message ?? cause.code}`, exitCode: EXIT_FAILURE };
  }
  return { message: (error as Error).message ?? String(error), exitCode: EXIT_FAILURE };
}
