#!/usr/bin/env node
/* The `tailhook` command: parses arguments and hands over to one file per command. */
import { Command } from "commander";
import { TailhookHttpError } from "../client/errors.js";
import { TailhookError } from "../core/errors.js";
import { registerForwardCommands } from "./commands/forward.js";
import { registerInboxCommands } from "./commands/inboxes.js";
import { registerServe } from "./commands/serve.js";
import { registerTailCommands } from "./commands/tail.js";
import { CliError } from "./errors.js";

function describe(error: unknown): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof TailhookHttpError) return { message: `server said ${error.status}: ${error.message}`, exitCode: 1 };
  if (error instanceof TailhookError) return { message: error.message, exitCode: 2 };
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === "ECONNREFUSED") return { message: `cannot reach the server (${cause.message})`, exitCode: 1 };
  return { message: (error as Error).message ?? String(error), exitCode: 1 };
}

// `tailhook tail … | head -n 1`: the reader went away, which is a normal way to stop.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command("tailhook")
  .description("a durable inbox for webhooks that you can tail -f")
  .option("--server <url>", "server URL (or TAILHOOK_URL; default http://127.0.0.1:8080)")
  .option("--token <token>", "admin or inbox token (or TAILHOOK_TOKEN)")
  .showHelpAfterError();

registerServe(program);
registerInboxCommands(program);
registerTailCommands(program);
registerForwardCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const { message, exitCode } = describe(error);
  process.stderr.write(`tailhook: ${message}\n`);
  process.exit(exitCode);
}
