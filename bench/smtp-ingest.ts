/*
 * The smtp phase: messages/s through the SMTP door (10 KiB messages, 16 connections,
 * the load generator in its own process: bench/smtp-load.ts) against webhook ingest of
 * the same bytes (POST, Content-Type message/rfc822, 16 connections) on the same fresh
 * server, in windows taken in turns so both rates come from the same conditions.
 */
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { startTailhook } from "./children.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import type { SmtpLoadRequest, SmtpLoadResult } from "./smtp-load.js";

export interface SmtpIngestOptions {
  messageBytes: number;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  windowSeconds: number;
  progress: (message: string) => void;
}

export interface SmtpIngestResult {
  smtp: SmtpLoadResult;
  webhook: LoadResult;
  /** Events in the inboxes afterwards vs 250s and 2xx counted (a check, not a figure). */
  stored: { smtp: number; webhook: number };
}

/** A message of `bytes` bytes: headers, then base64 lines (none starts with "."), CRLF throughout. */
export function benchMessage(bytes: number): string {
  let message =
    "From: Vendor <vendor@bench.test>\r\nTo: orders@bench.test\r\nSubject: service order update\r\nMessage-ID: <bench@vendor.test>\r\nContent-Type: text/plain\r\n\r\n";
  while (message.length < bytes) {
    const room = Math.max(1, Math.min(76, bytes - message.length - 2));
    message += `${randomBytes(57).toString("base64").slice(0, room)}\r\n`;
  }
  return message;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function smtpLoad(request: SmtpLoadRequest): Promise<SmtpLoadResult> {
  const script = fileURLToPath(new URL("./smtp-load.js", import.meta.url));
  const child = fork(script, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (reply: { result?: SmtpLoadResult; error?: string }) => {
      child.kill();
      if (reply.result) resolve(reply.result);
      else reject(new Error(`smtp load: ${reply.error}`));
    });
    child.once("exit", (code) => reject(new Error(`smtp load exited (${code}) without a result`)));
    child.send(request);
  });
}

function combineSmtp(windows: SmtpLoadResult[]): SmtpLoadResult {
  return {
    messagesPerSecond: windows.reduce((sum, window) => sum + window.messagesPerSecond, 0) / windows.length,
    // The median of the windows' percentiles: the samples stay in the load child.
    p50: windows.map((window) => window.p50).sort((a, b) => a - b)[Math.floor(windows.length / 2)]!,
    p99: windows.map((window) => window.p99).sort((a, b) => a - b)[Math.floor(windows.length / 2)]!,
    refused: windows.reduce((sum, window) => sum + window.refused, 0),
    errors: windows.reduce((sum, window) => sum + window.errors, 0),
  };
}

function combineHttp(windows: LoadResult[]): LoadResult {
  const latencies = windows.flatMap((window) => window.latencies).sort((a, b) => a - b);
  return {
    requestsPerSecond: windows.reduce((sum, window) => sum + window.requestsPerSecond, 0) / windows.length,
    p50: latencies[Math.floor(latencies.length * 0.5)] ?? Number.NaN,
    p99: latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.99) - 1)] ?? Number.NaN,
    non2xx: windows.reduce((sum, window) => sum + window.non2xx, 0),
    errors: windows.reduce((sum, window) => sum + window.errors, 0),
    latencies,
  };
}

export async function measureSmtpIngest(options: SmtpIngestOptions): Promise<SmtpIngestResult> {
  const smtpPort = await freePort();
  const adminToken = `bench_${randomBytes(24).toString("hex")}`;
  const tailhook = await startTailhook({ adminToken, args: ["--smtp-port", String(smtpPort)] });
  try {
    const mailInbox = await tailhook.createInbox();
    const hookInbox = await tailhook.createInbox();
    const message = benchMessage(options.messageBytes);
    const smtpRequest = (seconds: number): SmtpLoadRequest => ({
      host: "127.0.0.1",
      port: smtpPort,
      recipient: `${mailInbox.id}@bench.test`,
      message,
      connections: options.connections,
      seconds,
    });
    const webhook = (seconds: number) =>
      runLoad({
        url: hookInbox.ingestUrl,
        body: message,
        connections: options.connections,
        seconds,
        headers: { "content-type": "message/rfc822" },
      });

    options.progress(
      `smtp: ${options.messageBytes} B messages, ${options.connections} connections, SMTP and webhook in ${options.windowSeconds} s windows taken in turns, ~${options.seconds} s each`,
    );
    await smtpLoad(smtpRequest(options.warmupSeconds));
    await webhook(options.warmupSeconds);
    const rounds = Math.max(1, Math.round(options.seconds / options.windowSeconds));
    const smtpWindows: SmtpLoadResult[] = [];
    const hookWindows: LoadResult[] = [];
    for (let round = 0; round < rounds; round++) {
      smtpWindows.push(await smtpLoad(smtpRequest(options.windowSeconds)));
      hookWindows.push(await webhook(options.windowSeconds));
    }
    const lastSeq = async (id: string) =>
      (
        (await (await fetch(`${tailhook.url}/api/inboxes/${id}`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as {
          lastSeq: number;
        }
      ).lastSeq;
    return {
      smtp: combineSmtp(smtpWindows),
      webhook: combineHttp(hookWindows),
      stored: { smtp: await lastSeq(mailInbox.id), webhook: await lastSeq(hookInbox.id) },
    };
  } finally {
    await tailhook.stop();
  }
}
