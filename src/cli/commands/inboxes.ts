/* `tailhook create` and `tailhook list`: make and see inboxes with the admin token. */
import type { Command } from "commander";
import { paletteFor } from "../colour.js";
import { serverKey, updateCliConfig } from "../config-file.js";
import { connect, requireAdminToken } from "../connection.js";

export function registerInboxCommands(program: Command): void {
  program
    .command("create [name]")
    .description("create an inbox, print its ingest URL and token, and save the token in the config file")
    .option("--json", "print the API's JSON object")
    .option("-q, --quiet", "print only the inbox id")
    .action(async (name: string | undefined, flags: { json?: boolean; quiet?: boolean }, command: Command) => {
      const connection = requireAdminToken(connect(command.optsWithGlobals()), "create");
      const inbox = await connection.client.createInbox(name === undefined ? {} : { name });
      // The server just used becomes the config's current one, holding the new inbox's token.
      updateCliConfig(connection.configFile, (config) => {
        const key = serverKey(connection.server);
        const entry = (config.servers[key] ??= { inboxes: {} });
        entry.inboxes[inbox.id] = { token: inbox.token, name: inbox.name };
        config.current = key;
      });
      if (flags.quiet) {
        process.stdout.write(`${inbox.id}\n`);
        return;
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(inbox)}\n`);
        return;
      }
      process.stdout.write(
        [
          `inbox      ${inbox.id}${inbox.name ? ` (${inbox.name})` : ""}`,
          `ingest URL ${inbox.ingestUrl}`,
          `stream URL ${inbox.streamUrl}`,
          `token      ${inbox.token}`,
          "",
        ].join("\n"),
      );
    });

  program
    .command("list")
    .description("list inboxes")
    .option("--json", "print one JSON object per line")
    .action(async (flags: { json?: boolean }, command: Command) => {
      const { client } = requireAdminToken(connect(command.optsWithGlobals()), "list");
      const paint = paletteFor(process.stdout);
      for (const inbox of await client.listInboxes()) {
        const silent = inbox.silent ? `  ${paint.yellow("silent")}` : "";
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(inbox)}\n`
            : `${inbox.id}  ${inbox.name ?? "-"}  ${inbox.lastSeq} events  ${inbox.ingestUrl}${silent}\n`,
        );
      }
    });
}
