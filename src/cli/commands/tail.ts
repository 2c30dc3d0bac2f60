/*
 * `tailhook tail` follows an inbox like `tail -f`; `tailhook wait` blocks until N
 * events arrived and prints them (for scripts waiting on a vendor's callback). Both
 * ride the client's resuming iterator, so disconnects and restarts cost nothing.
 * `tail --consumer NAME` reads as a server-side consumer: it starts after where that
 * consumer stopped and acks each event once it is written out.
 */
import type { Command } from "commander";
import type { LossNotice, TailhookClient, TailOptions } from "../../client/client.js";
import { TailhookHttpError } from "../../client/errors.js";
import { parseConsumerName } from "../../core/consumers.js";
import { AckCommitter } from "../../forward/ack-committer.js";
import { paletteFor } from "../colour.js";
import { connect } from "../connection.js";
import { CliError, EXIT_TIMEOUT, UsageError } from "../errors.js";
import { formatEventJson, formatEventLine } from "../format.js";
import { resolveInbox } from "../resolve-inbox.js";

/** How long a stopping `tail --consumer` waits for its last ack. */
const FINAL_ACK_MS = 5000;

function reportRetry(error: unknown, delayMs: number): void {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (error as Error).message;
  process.stderr.write(`tailhook: connection trouble (${reason}); retrying in ${delayMs} ms\n`);
}

function reportLoss(notice: LossNotice): void {
  process.stderr.write(
    `tailhook: warning: events after offset ${notice.requestedOffset} were removed by retention before they were read; going on from the earliest retained event\n`,
  );
}

/** Whether there is nothing to print yet: an empty inbox, `--from now`, or a caught-up consumer. */
async function nothingToShow(
  client: TailhookClient,
  inboxId: string,
  from: string | undefined,
  consumer: string | undefined,
): Promise<boolean> {
  if (from === "now") return true;
  if (consumer !== undefined && from === undefined) {
    try {
      return (await client.getConsumer(inboxId, consumer)).lag.events === 0;
    } catch (error) {
      if (!(error instanceof TailhookHttpError && error.status === 404)) throw error;
    }
  }
  return from === undefined || from === "start" ? (await client.getInbox(inboxId)).lastSeq === 0 : false;
}

function stopSignal(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  return controller.signal;
}

/** Resolves once `text` was handed to the OS (the point at which a consumer may ack it). */
function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
}

export function registerTailCommands(program: Command): void {
  program
    .command("tail <inbox>")
    .description("print events as they arrive; reconnects and resumes by itself")
    .option("--from <where>", "start, now or an offset (default: start; with --consumer, where it stopped)")
    .option("--consumer <name>", "read as this server-side consumer: resume where it stopped, ack each event once printed")
    .option("--json", "print each event's JSON envelope with its offset (NDJSON)")
    .action(async (ref: string, flags: { from?: string; consumer?: string; json?: boolean }, command: Command) => {
      const consumer = flags.consumer === undefined ? undefined : parseConsumerName(flags.consumer);
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      const id = inboxId!;
      const paint = paletteFor(process.stdout);
      let printed = 0;
      if (process.stderr.isTTY) {
        void nothingToShow(client, id, flags.from, consumer)
          .then((empty) => {
            if (empty && printed === 0) process.stderr.write(`tailhook: waiting for events… (Ctrl-C to stop)\n`);
          })
          .catch(() => undefined);
      }
      const acks = consumer === undefined ? undefined : new AckCommitter(client, id, consumer, (error) => reportRetry(error, 0));
      const signal = acks ? stopSignal() : undefined;
      const options: TailOptions = {
        from: flags.from ?? (consumer === undefined ? "start" : undefined),
        consumer,
        signal,
        onRetry: reportRetry,
        onLoss: reportLoss,
      };
      for await (const item of client.tail(id, options)) {
        if (item.kind !== "event") continue;
        const { event, offset } = item;
        await write(`${flags.json ? formatEventJson(event, offset) : formatEventLine(event, paint)}\n`);
        printed++;
        acks?.commit(offset);
      }
      if (acks) await acks.flush(AbortSignal.timeout(FINAL_ACK_MS));
    });

  program
    .command("wait <inbox>")
    .description("wait for N events, print them as NDJSON and exit 0 (exit 124 on timeout)")
    .option("--count <n>", "how many events to wait for", "1")
    .option("--timeout <seconds>", "give up after this many seconds (default: wait forever)")
    .option("--from <where>", "start, now or an offset", "start")
    .action(async (ref: string, flags: { count: string; timeout?: string; from: string }, command: Command) => {
      const count = Number(flags.count);
      if (!Number.isInteger(count) || count < 1) throw new UsageError(`--count must be a positive integer, got ${flags.count}`);
      const timeoutSeconds = flags.timeout === undefined ? undefined : Number(flags.timeout);
      if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) {
        throw new UsageError(`--timeout must be a positive number of seconds, got ${flags.timeout}`);
      }
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      const controller = new AbortController();
      const timer = timeoutSeconds === undefined ? undefined : setTimeout(() => controller.abort(), timeoutSeconds * 1000);
      let received = 0;
      for await (const item of client.tail(inboxId!, {
        from: flags.from,
        signal: controller.signal,
        onRetry: reportRetry,
        onLoss: reportLoss,
      })) {
        if (item.kind !== "event") continue;
        const { event, offset } = item;
        process.stdout.write(`${formatEventJson(event, offset)}\n`);
        if (++received >= count) break;
      }
      clearTimeout(timer);
      if (received < count) {
        throw new CliError(`timed out after ${flags.timeout} s with ${received} of ${count} events`, EXIT_TIMEOUT);
      }
    });
}
