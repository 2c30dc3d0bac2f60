/* `tailhook consumers <inbox>` lists an inbox's consumers with their lag; `consumer delete` removes one. */
import type { Command } from "commander";
import type { ConsumerInfo } from "../../client/client.js";
import { paletteFor, type Palette } from "../colour.js";
import { connect } from "../connection.js";
import { resolveInbox } from "../resolve-inbox.js";

function formatConsumer(consumer: ConsumerInfo, paint: Palette): string {
  const { events, seconds, lostEvents } = consumer.lag;
  const lag = events === 0 ? paint.green("caught up") : paint.yellow(`lag ${events} events, ${seconds} s`);
  const lost = lostEvents > 0 ? `  ${paint.red(`${lostEvents} lost to retention`)}` : "";
  const behind = consumer.lag.behindHorizon && lostEvents === 0 ? `  ${paint.red(`behind the horizon ${consumer.lag.horizonOffset}`)}` : "";
  return `${paint.bold(consumer.name)}  at #${consumer.committedSeq}  ${lag}${lost}${behind}  last ack ${consumer.lastAckAt ?? "never"}`;
}

export function registerConsumerCommands(program: Command): void {
  program
    .command("consumers <inbox>")
    .description("list the inbox's consumers with their lag (events behind, age of the oldest unacked one)")
    .option("--json", "print one JSON object per line")
    .action(async (ref: string, flags: { json?: boolean }, command: Command) => {
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      const paint = paletteFor(process.stdout);
      for (const consumer of await client.listConsumers(inboxId!)) {
        process.stdout.write(`${flags.json ? JSON.stringify(consumer) : formatConsumer(consumer, paint)}\n`);
      }
    });

  program
    .command("consumer")
    .description("manage one consumer")
    .command("delete <inbox> <name>")
    .description("delete a consumer (its position is forgotten)")
    .action(async (ref: string, name: string, _flags: unknown, command: Command) => {
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      await client.deleteConsumer(inboxId!, name);
      process.stdout.write(`deleted consumer ${name} of inbox ${inboxId}\n`);
    });
}
