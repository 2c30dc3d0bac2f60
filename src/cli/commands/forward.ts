/*
 * `tailhook forward` delivers every event to a local URL, at least once and in order,
 * committing a server-side consumer only after a 2xx; `tailhook replay` redelivers a
 * range on demand.
 */
import type { Command } from "commander";
import { forward, type DeliveryReport } from "../../forward/forwarder.js";
import { replay } from "../../forward/replay.js";
import { parseSigningSecret, type SigningKey } from "../../forward/resign.js";
import type { On4xx } from "../../forward/retry-policy.js";
import { loadClientEnvironment } from "../../config.js";
import { connect } from "../connection.js";
import { CliError, UsageError } from "../errors.js";
import { goneError, lossWarning, ON_GONE_HELP, parseOnGone } from "../on-gone.js";
import { resolveInbox } from "../resolve-inbox.js";

const PROGRESS_EVERY_MS = 2000;

function parseTarget(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--to must be an http(s) URL, got ${raw}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--to must be an http(s) URL, got ${raw}`);
  return url;
}

function parseOn4xx(raw: string): On4xx {
  if (raw !== "retry" && raw !== "skip" && raw !== "stop") throw new UsageError(`--on-4xx must be retry, skip or stop, got ${raw}`);
  return raw;
}

function parseTimeout(raw: string): number {
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 1) throw new UsageError(`--timeout must be a positive number of milliseconds, got ${raw}`);
  return ms;
}

/** --sign wins over TAILHOOK_SIGN_SECRET; neither: deliveries carry the sender's headers only. */
function signingKey(flag: string | undefined, globals: Record<string, unknown>): SigningKey | undefined {
  const fromEnv = loadClientEnvironment(globals).signSecret;
  const raw = flag ?? fromEnv;
  if (raw === undefined) return undefined;
  try {
    return parseSigningSecret(raw);
  } catch (error) {
    const source = flag !== undefined ? "--sign" : "TAILHOOK_SIGN_SECRET";
    throw new UsageError(`${source}: ${(error as Error).message}`);
  }
}

function printDelivery(report: DeliveryReport): void {
  const result = report.outcome.kind === "response" ? String(report.outcome.status) : `error ${report.outcome.message}`;
  const note =
    report.retryInMs !== undefined
      ? `  retrying in ${(report.retryInMs / 1000).toFixed(1)} s (attempt ${report.attempt})`
      : report.verdict === "skip"
        ? "  skipped"
        : report.verdict === "stop"
          ? "  stopping"
          : report.attempt > 1
            ? `  (attempt ${report.attempt})`
            : "";
  const keyFrame = report.snapshot ? "key frame  " : "";
  process.stdout.write(`${keyFrame}#${report.seq}  ${report.method}  ${report.path}  ${result}  ${report.ms} ms${note}\n`);
}

function stopSignal(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  return controller.signal;
}

/** The options forward and replay share: where to deliver and how to treat failures. */
function withDeliveryOptions(command: Command, on4xxDefault: On4xx): Command {
  return command
    .requiredOption("--to <url>", "where to deliver (the event's sub-path is appended)")
    .option("--on-4xx <policy>", "retry, skip or stop on 4xx other than 408/429", on4xxDefault)
    .option("--timeout <ms>", "per-attempt timeout", "30000")
    .option("--sign <whsec_secret>", "re-sign every delivery with this Standard Webhooks secret (or set TAILHOOK_SIGN_SECRET)");
}

export function registerForwardCommands(program: Command): void {
  withDeliveryOptions(
    program
      .command("forward <inbox>")
      .description("deliver every event to a URL, at least once and in order, resuming where it stopped")
      .option("--consumer <name>", "server-side consumer that remembers the position", "forward")
      .option("--on-gone <policy>", ON_GONE_HELP, "earliest"),
    "retry",
  ).action(
    async (
      inboxRef: string,
      flags: { to: string; consumer: string; on4xx: string; timeout: string; sign?: string; onGone: string },
      command: Command,
    ) => {
      const target = parseTarget(flags.to);
      const onGone = parseOnGone(flags.onGone);
      const on4xx = parseOn4xx(flags.on4xx);
      const timeoutMs = parseTimeout(flags.timeout);
      const signing = signingKey(flags.sign, command.optsWithGlobals());
      const connection = await resolveInbox(connect(command.optsWithGlobals()), inboxRef);
      const { client } = connection;
      const inboxId = connection.inboxId!;
      const signal = stopSignal();
      const progress = setInterval(() => {
        client
          .getConsumer(inboxId, flags.consumer)
          .then((consumer) => {
            if (consumer.lag.events > 1) process.stderr.write(`tailhook: draining backlog, ${consumer.lag.events} events to deliver\n`);
          })
          .catch(() => undefined);
      }, PROGRESS_EVERY_MS);
      progress.unref();
      const result = await forward({
        client,
        inboxId,
        target,
        consumer: flags.consumer,
        on4xx,
        timeoutMs,
        signing,
        signal,
        onDelivery: printDelivery,
        onTrouble: (message) => process.stderr.write(`tailhook: ${message}\n`),
        onGone,
        onLoss: (notice) => process.stderr.write(lossWarning(notice, onGone, "delivered")),
        onKeyFrame: (marker) =>
          process.stderr.write(`tailhook: delivering the key frame as of ${marker.offset}: the latest event per entity\n`),
        onKeyFrameEnd: (offset, events) =>
          process.stderr.write(`tailhook: key frame delivered (${events} events); going on with the events after ${offset}\n`),
      });
      clearInterval(progress);
      if (result.status === "gone") throw goneError(result.requestedOffset, result.earliestOffset);
      if (result.status === "stopped") {
        throw new CliError(`stopped: the target answered ${result.httpStatus} to event #${result.seq} (--on-4xx stop)`);
      }
    },
  );

  withDeliveryOptions(
    program.command("replay <inbox> <range>").description("redeliver one event (<seq>) or a range (<from>..<to>) to a URL"),
    "stop",
  ).action(
    async (inboxRef: string, range: string, flags: { to: string; on4xx: string; timeout: string; sign?: string }, command: Command) => {
      const signing = signingKey(flags.sign, command.optsWithGlobals());
      const match = /^(\d+)(?:\.\.(\d+))?$/.exec(range);
      if (!match) throw new UsageError(`the range is <seq> or <from>..<to>, got ${range}`);
      const fromSeq = Number(match[1]);
      const toSeq = Number(match[2] ?? match[1]);
      if (fromSeq < 1 || toSeq < fromSeq) throw new UsageError(`the range ${range} is empty`);
      const connection = await resolveInbox(connect(command.optsWithGlobals()), inboxRef);
      const { client } = connection;
      const inboxId = connection.inboxId!;
      const lastSeq = (await client.getInbox(inboxId)).lastSeq;
      if (fromSeq > lastSeq) throw new CliError(`inbox has ${lastSeq} events; nothing at #${fromSeq}`);
      const result = await replay({
        client,
        inboxId,
        target: parseTarget(flags.to),
        fromSeq,
        toSeq: Math.min(toSeq, lastSeq),
        on4xx: parseOn4xx(flags.on4xx),
        timeoutMs: parseTimeout(flags.timeout),
        signing,
        signal: stopSignal(),
        onDelivery: printDelivery,
      });
      if (result.status === "stopped") {
        throw new CliError(`stopped: the target answered ${result.httpStatus} to event #${result.seq}`);
      }
    },
  );
}
