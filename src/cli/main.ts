#!/usr/bin/env node
/* The `tailhook` command: parses arguments and hands over to one file per command. */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerConsumerCommands } from "./commands/consumers.js";
import { registerEventCommands } from "./commands/events.js";
import { registerForwardCommands } from "./commands/forward.js";
import { registerInboxCommands } from "./commands/inboxes.js";
import { registerInboxManagement } from "./commands/inbox.js";
import { registerServe } from "./commands/serve.js";
import { registerTailCommands } from "./commands/tail.js";
import { describeFailure } from "./explain.js";

const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

// `tailhook tail … | head -n 1`: the reader went away, which is a normal way to stop.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

/** "tailhook tail --help" for the command the arguments name, for usage errors. */
function helpCommandFor(program: Command, argv: string[]): string {
  const path = ["tailhook"];
  let command = program;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--server" || arg === "--token") i++;
    if (arg.startsWith("-")) continue;
    const sub = command.commands.find((candidate) => candidate.name() === arg);
    if (!sub) break;
    path.push(arg);
    command = sub;
  }
  return `${path.join(" ")} --help`;
}

const program = new Command("tailhook")
  .description("a durable inbox for webhooks that you can tail -f")
  .version(version, "-v, --version", "print the version")
  .option("--server <url>", "server URL (or TAILHOOK_URL; default: the config file's, else http://127.0.0.1:8080)")
  .option("--token <token>", "admin or inbox token (or TAILHOOK_TOKEN)")
  // Usage errors are reported below, in one line; commander only parses.
  .exitOverride()
  .configureOutput({ outputError: () => undefined, writeErr: () => undefined });

registerServe(program);
registerInboxCommands(program);
registerInboxManagement(program);
registerEventCommands(program);
registerConsumerCommands(program);
registerTailCommands(program);
registerForwardCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // --help and --version end parsing this way too, having printed what was asked for.
  if (error instanceof CommanderError && error.exitCode === 0) process.exit(0);
  const usage = helpCommandFor(program, process.argv.slice(2));
  const missingCommand = error instanceof CommanderError && error.code === "commander.help";
  const { message, exitCode } = missingCommand
    ? { message: `a command is missing (see ${usage})`, exitCode: 2 }
    : describeFailure(error, usage);
  process.stderr.write(`tailhook: ${message}\n`);
  process.exit(exitCode);
}
