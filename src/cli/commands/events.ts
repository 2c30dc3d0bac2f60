/*
 * `tailhook events <inbox>` lists stored events (the newest by default, or forward
 * from an offset) without following; `tailhook event <inbox> <seq>` shows one, or
 * writes its exact body bytes (--body) or its raw headers (--headers).
 */
import type { Command } from "commander";
import { TailhookGoneError } from "../../client/errors.js";
import type { EventEnvelope } from "../../core/types.js";
import { formatOffset } from "../../core/offsets.js";
import { paletteFor } from "../colour.js";
import { connect } from "../connection.js";
import { UsageError } from "../errors.js";
import { eventTarget, formatEventJson, formatEventLine, formatSize } from "../format.js";
import { resolveInbox } from "../resolve-inbox.js";

const MAX_LIMIT = 10_000;

function parseLimit(raw: string): number {
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new UsageError(`--limit must be an integer from 1 to ${MAX_LIMIT}, got ${raw}`);
  return limit;
}

function parseSeq(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) throw new UsageError(`<seq> is an event number (1, 2, …), got ${raw}`);
  return Number(raw);
}

function printEvent(event: EventEnvelope): void {
  const paint = paletteFor(process.stdout);
  const lines = [
    `${paint.bold(`#${event.seq}`)}  ${paint.cyan(event.method)} ${eventTarget(event)}`,
    `${paint.dim("received")}  ${event.receivedAt} from ${event.remoteAddr}  ${event.id}`,
  ];
  if (event.verification) {
    const verdict = `${event.verification.scheme} ${event.verification.ok ? "ok" : "FAILED"}${event.verification.reason ? ` (${event.verification.reason})` : ""}`;
    lines.push(`${paint.dim("verified")}  ${event.verification.ok ? paint.green(verdict) : paint.red(verdict)}`);
  }
  lines.push("", ...event.headers.map(([name, value]) => `${name}: ${value}`), "");
  lines.push(event.bodyEncoding === "utf8" ? event.body : paint.dim(`<binary ${formatSize(event.size)}; --body writes the bytes>`));
  process.stdout.write(`${lines.join("\n")}\n`);
}

export function registerEventCommands(program: Command): void {
  program
    .command("events <inbox>")
    .description("list stored events, the newest --limit by default, without following")
    .option("--limit <n>", "at most this many events", "20")
    .option("--from <where>", "list forward from `start` or an offset, instead of the newest")
    .option("--json", "print each event's JSON envelope with its offset (NDJSON)")
    .action(async (ref: string, flags: { limit: string; from?: string; json?: boolean }, command: Command) => {
      const limit = parseLimit(flags.limit);
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      const id = inboxId!;
      let read;
      if (flags.from !== undefined) {
        read = await client.readEvents(id, { offset: flags.from === "start" ? "-1" : flags.from, limit });
      } else {
        const { lastSeq } = await client.getInbox(id);
        try {
          read = await client.readEvents(id, { offset: formatOffset(Math.max(0, lastSeq - limit)), limit });
        } catch (error) {
          // Retention removed some of the newest `limit`: list what is left.
          if (!(error instanceof TailhookGoneError)) throw error;
          read = await client.readEvents(id, { offset: "-1", limit });
        }
      }
      const paint = paletteFor(process.stdout);
      for (const { event, offset } of read.events) {
        process.stdout.write(`${flags.json ? formatEventJson(event, offset) : formatEventLine(event, paint)}\n`);
      }
    });

  program
    .command("event <inbox> <seq>")
    .description("show one event: request line, headers and body")
    .option("--body", "write the body's exact bytes to stdout, nothing else")
    .option("--headers", "print only the raw headers, one `Name: value` per line, in the order sent")
    .option("--json", "print the JSON envelope")
    .action(async (ref: string, rawSeq: string, flags: { body?: boolean; headers?: boolean; json?: boolean }, command: Command) => {
      const seq = parseSeq(rawSeq);
      if ([flags.body, flags.headers, flags.json].filter(Boolean).length > 1)
        throw new UsageError("--body, --headers and --json go one at a time");
      const { client, inboxId } = await resolveInbox(connect(command.optsWithGlobals()), ref);
      if (flags.body) {
        process.stdout.write(await client.getEventBody(inboxId!, seq));
        return;
      }
      const event = await client.getEvent(inboxId!, seq);
      if (flags.json) process.stdout.write(`${JSON.stringify(event)}\n`);
      else if (flags.headers) process.stdout.write(event.headers.map(([name, value]) => `${name}: ${value}\n`).join(""));
      else printEvent(event);
    });
}
