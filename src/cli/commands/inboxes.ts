/* `tailhook create` and `tailhook list`: manage inboxes with the admin token. */
import type { Command } from "commander";
import { writeCliConfig } from "../config-file.js";
import { connect } from "../connection.js";

export function registerInboxCommands(program: Command): void {
  program
    .command("create [name]")
    .description("create an inbox and print its ingest URL and token")
    .option("--json", "print the API's JSON object")
    .action(async (name: string | undefined, flags: { json?: boolean }, command: Command) => {
      const connection = connect(command.optsWithGlobals());
      const inbox = await connection.client.createInbox(name === undefined ? {} : { name });
      if (connection.configFile) {
        writeCliConfig(connection.configFile, {
          ...connection.config,
          server: connection.server,
          inboxes: { ...connection.config.inboxes, [inbox.id]: { token: inbox.token } },
        });
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
      const { client } = connect(command.optsWithGlobals());
      for (const inbox of await client.listInboxes()) {
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(inbox)}\n`
            : `${inbox.id}  ${inbox.name ?? "-"}  ${inbox.lastSeq} events  ${inbox.ingestUrl}\n`,
        );
      }
    });
}
