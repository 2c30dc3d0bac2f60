/*
 * `tailhook tail` follows an inbox like `tail -f`; `tailhook wait` blocks until N
 * events arrived and prints them (for scripts waiting on a vendor's callback). Both
 * ride the client's resuming iterator, so disconnects and restarts cost nothing.
 */
import type { Command } from "commander";
import { connect } from "../connection.js";
import { formatEventJson, formatEventLine } from "../format.js";
import type { LossNotice, TailOptions } from "../../client/client.js";
import { CliError } from "../errors.js";

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

export function registerTailCommands(program: Command): void {
  program
    .command("tail <inbox-id>")
    .description("print events as they arrive; reconnects and resumes by itself")
    .option("--from <where>", "start, now or an offset", "start")
    .option("--json", "print each event's JSON envelope (NDJSON)")
    .action(async (inboxId: string, flags: { from: string; json?: boolean }, command: Command) => {
      const { client } = connect(command.optsWithGlobals(), inboxId);
      const options: TailOptions = { from: flags.from, onRetry: reportRetry, onLoss: reportLoss };
      for await (const { event } of client.tail(inboxId, options)) {
        process.stdout.write(`${flags.json ? formatEventJson(event) : formatEventLine(event)}\n`);
      }
    });

  program
    .command("wait <inbox-id>")
    .description("wait for N events, print them as NDJSON and exit 0 (exit 124 on timeout)")
    .option("--count <n>", "how many events to wait for", "1")
    .option("--timeout <seconds>", "give up after this many seconds (default: wait forever)")
    .option("--from <where>", "start, now or an offset", "start")
    .action(async (inboxId: string, flags: { count: string; timeout?: string; from: string }, command: Command) => {
      const count = Number(flags.count);
      if (!Number.isInteger(count) || count < 1) throw new CliError(`--count must be a positive integer, got ${flags.count}`);
      const timeoutSeconds = flags.timeout === undefined ? undefined : Number(flags.timeout);
      if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) {
        throw new CliError(`--timeout must be a positive number of seconds, got ${flags.timeout}`);
      }
      const { client } = connect(command.optsWithGlobals(), inboxId);
      const controller = new AbortController();
      const timer =
        timeoutSeconds === undefined ? undefined : setTimeout(() => controller.abort(), timeoutSeconds * 1000);
      let received = 0;
      for await (const { event } of client.tail(inboxId, {
        from: flags.from,
        signal: controller.signal,
        onRetry: reportRetry,
        onLoss: reportLoss,
      })) {
        process.stdout.write(`${formatEventJson(event)}\n`);
        if (++received >= count) break;
      }
      clearTimeout(timer);
      if (received < count) {
        throw new CliError(`timed out after ${flags.timeout} s with ${received} of ${count} events`, 124);
      }
    });
}
