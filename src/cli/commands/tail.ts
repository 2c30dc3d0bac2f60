/*
 * `tailhook tail` follows an inbox like `tail -f`; `tailhook wait` blocks until N
 * events arrived and prints them (for scripts waiting on a vendor's callback). Both
 * ride the client's resuming iterator, so disconnects and restarts cost nothing.
 * `tail --consumer NAME` reads as a server-side consumer: it starts after where that
 * consumer stopped and acks each event once it is written out. `--from snapshot` and
 * `--on-gone snapshot` print the inbox's key frame (the latest event per entity) between
 * two marker lines, then the events after it (docs/recovery.md).
 */
import type { Command } from "commander";
import type { TailhookClient, TailItem, TailOptions } from "../../client/client.js";
import { TailhookGoneError, TailhookHttpError } from "../../client/errors.js";
import { parseConsumerName } from "../../core/consumers.js";
import { AckCommitter } from "../../forward/ack-committer.js";
import { paletteFor } from "../colour.js";
import { connect } from "../connection.js";
import { CliError, EXIT_TIMEOUT, UsageError } from "../errors.js";
import { formatEventJson, formatEventLine, formatKeyFrameJson, formatKeyFrameLine } from "../format.js";
import { goneError, lossWarning, ON_GONE_HELP, parseOnGone } from "../on-gone.js";
import { resolveInbox } from "../resolve-inbox.js";

/** How long a stopping `tail --consumer` waits for its last ack. */
const FINAL_ACK_MS = 5000;

function reportRetry(error: unknown, delayMs: number): void {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (error as Error).message;
  process.stderr.write(`tailhook: connection trouble (${reason}); retrying in ${delayMs} ms\n`);
}

/** Whether there is nothing to print yet: an empty inbox, `--from now`, or a caught-up consumer. */
async function nothingToShow(
  client: TailhookClient,
  inboxId: string,
  from: string | undefined,
  consumer: string | undefined,
): Promise<boolean> {
  if (from === "now" || from === "snapshot") return from === "now";
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

function format(item: TailItem, json: boolean, paint: ReturnType<typeof paletteFor>): string {
  if (item.kind === "event") return json ? formatEventJson(item.event, item.offset) : formatEventLine(item.event, paint);
  return json ? formatKeyFrameJson(item) : formatKeyFrameLine(item, paint);
}

/** Resolves once `text` was handed to the OS (the point at which a consumer may ack it). */
function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
}

export function registerTailCommands(program: Command): void {
  program
    .command("tail <inbox>")
    .description("print events as they arrive; reconnects and resumes by itself")
    .option(
      "--from <where>",
      "start, now, snapshot (the latest event per entity first) or an offset (default: start; with --consumer, where it stopped)",
    )
    .option("--on-gone <policy>", ON_GONE_HELP, "earliest")
    .option("--consumer <name>", "read as this server-side consumer: resume where it stopped, ack each event once printed")
    .option("--json", "print each event's JSON envelope with its offset (NDJSON)")
    .action(async (ref: string, flags: { from?: string; consumer?: string; json?: boolean; onGone: string }, command: Command) => {
      const consumer = flags.consumer === undefined ? undefined : parseConsumerName(flags.consumer);
      const onGone = parseOnGone(flags.onGone);
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
        onGone: onGone === "stop" ? "throw" : onGone,
        onLoss: (notice) => process.stderr.write(lossWarning(notice, onGone, "read")),
      };
      try {
        for await (const item of client.tail(id, options)) {
          await write(`${format(item, flags.json === true, paint)}\n`);
          printed++;
          // A key frame's events come in entity order: only its end (X) is a point to resume from.
          if (item.kind === "event" || item.kind === "snapshot-end") acks?.commit(item.offset);
        }
      } catch (error) {
        if (error instanceof TailhookGoneError && onGone === "stop") throw goneError(error.requestedOffset, error.earliestOffset);
        throw error;
      } finally {
        if (acks) await acks.flush(AbortSignal.timeout(FINAL_ACK_MS));
      }
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
      if (flags.from === "snapshot") throw new UsageError("wait counts events: --from is start, now or an offset");
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      const controller = new AbortController();
      const timer = timeoutSeconds === undefined ? undefined : setTimeout(() => controller.abort(), timeoutSeconds * 1000);
      let received = 0;
      for await (const item of client.tail(inboxId!, {
        from: flags.from,
        signal: controller.signal,
        onRetry: reportRetry,
        onLoss: (notice) => process.stderr.write(lossWarning(notice, "earliest", "read")),
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
