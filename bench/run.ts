/*
 * `npm run bench`: measures tailhook's ingest against a bare node:http baseline and
 * its ingest→reader latency, then prints the figures as markdown tables next to the
 * targets. A missed target is reported, never fatal (this is a report, not a test);
 * an invalid run (errors, non-2xx replies, lost events) or a crash exits 1.
 */
import { cpus, loadavg } from "node:os";
import { startBare, startTailhook, stopAll } from "./children.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import { measureReaderLatency, type ReaderLatencyOptions, type ReaderLatencyResult } from "./reader-latency.js";
import { paddedJson, summarize } from "./stats.js";

function positiveSeconds(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`BENCH_SECONDS must be a positive number, got ${raw}`);
  return value;
}

const INGEST_SECONDS = positiveSeconds(process.env.BENCH_SECONDS, 10);
const WARMUP_SECONDS = 2;
const CONNECTIONS = 100;
const BODY_BYTES = 1024;
const READER: ReaderLatencyOptions = { rate: 1000, seconds: 5, connections: 4, bodyBytes: BODY_BYTES };
const TARGET = { ratio: 0.8, ingestP99Ms: 15, readerP99Ms: 5 };

interface Figures {
  loadBefore: number;
  bare: LoadResult;
  ingest: LoadResult;
  readers: Array<[name: string, result: ReaderLatencyResult]>;
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

async function measure(): Promise<Figures> {
  const loadBefore = loadavg()[0]!;
  const body = paddedJson({ type: "bench.event", source: "tailhook-bench" }, BODY_BYTES);
  const load = async (url: string): Promise<LoadResult> => {
    await runLoad({ url, body, connections: CONNECTIONS, seconds: WARMUP_SECONDS });
    return runLoad({ url, body, connections: CONNECTIONS, seconds: INGEST_SECONDS });
  };

  progress(`bare node:http ingest, ${WARMUP_SECONDS} s warm-up + ${INGEST_SECONDS} s`);
  const bareServer = await startBare();
  const bare = await load(bareServer.url);
  await bareServer.stop();

  progress(`tailhook ingest, ${WARMUP_SECONDS} s warm-up + ${INGEST_SECONDS} s`);
  const loaded = await startTailhook();
  const ingest = await load((await loaded.createInbox()).ingestUrl);
  await loaded.stop();

  // A fresh server, so the latency rows measure a steady state, not the aftermath of
  // the overload above (its WAL and checkpoint backlog); one paced second warms it up.
  const tailhook = await startTailhook();
  await measureReaderLatency("long-poll", await tailhook.createInbox(), { ...READER, seconds: 1 });
  const readers: Figures["readers"] = [];
  for (const mode of ["long-poll", "sse"] as const) {
    progress(`ingest→reader latency, ${mode}, ${READER.rate} req/s for ${READER.seconds} s`);
    readers.push([mode === "sse" ? "SSE" : mode, await measureReaderLatency(mode, await tailhook.createInbox(), READER)]);
  }
  await tailhook.stop();
  return { loadBefore, bare, ingest, readers };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}

const ms = (value: number) => value.toFixed(2);
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");

/** Prints the tables; returns what makes the run invalid (empty when it is valid). */
function report({ loadBefore, bare, ingest, readers }: Figures): string[] {
  const problems: string[] = [];
  const cpu = cpus();
  console.log(`\n## tailhook benchmark: ${new Date().toISOString()}, ${cpu.length} cores (${cpu[0]?.model ?? "?"}), Node ${process.version}`);
  console.log(`1-min load average before the run: ${loadBefore.toFixed(2)} (other processes share these cores)\n`);

  const ratio = ingest.requestsPerSecond / bare.requestsPerSecond;
  console.log(`Ingest: POST ${BODY_BYTES} B JSON, ${CONNECTIONS} connections, ${INGEST_SECONDS} s each after ${WARMUP_SECONDS} s warm-up\n`);
  const ingestRows = ([["bare node:http", bare], ["tailhook", ingest]] as const).map(([name, result]) => {
    if (result.non2xx + result.errors > 0) problems.push(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    return [name, result.requestsPerSecond.toFixed(0), ms(result.p50), ms(result.p99), String(result.non2xx), String(result.errors)];
  });
  ingestRows.push(["tailhook / bare", `${ratio.toFixed(2)}x`, "", "", "", ""]);
  console.log(table(["server", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors"], ingestRows));

  const { rate, connections, seconds } = READER;
  console.log(`\nIngest→reader: open-loop ${rate} req/s over ${connections} connections for ${seconds} s, read from "now", fresh server\n`);
  const readerP99s = new Map<string, number>();
  const readerRows = readers.map(([name, result]) => {
    if (result.sendFailures > 0) problems.push(`${name}: ${result.sendFailures} ingest requests failed`);
    if (result.received !== result.sent) problems.push(`${name}: received ${result.received} of ${result.sent} events`);
    if (result.duplicates > 0) problems.push(`${name}: ${result.duplicates} events delivered twice`);
    const latency = summarize(result.latencies);
    const ack = summarize(result.ackLatencies);
    readerP99s.set(name, latency.p99);
    const counts = [String(result.sent), result.sendRate.toFixed(0), String(result.received)];
    return [name, ...counts, ms(latency.p50), ms(latency.p99), ms(latency.max), ms(ack.p50), ms(ack.p99)];
  });
  console.log(table(["reader", "sent", "sent/s", "received", "p50 ms", "p99 ms", "max ms", "ack p50 ms", "ack p99 ms"], readerRows));

  console.log("\nTargets\n");
  const targetRows = [
    ["ingest throughput, tailhook / bare", `>= ${TARGET.ratio}x`, `${ratio.toFixed(2)}x`, verdict(ratio >= TARGET.ratio)],
    ["ingest p99 (100 connections)", `<= ${TARGET.ingestP99Ms} ms`, `${ms(ingest.p99)} ms`, verdict(ingest.p99 <= TARGET.ingestP99Ms)],
    ...[...readerP99s].map(([name, p99]) => [
      `ingest→reader p99, ${name}`,
      `<= ${TARGET.readerP99Ms} ms`,
      `${ms(p99)} ms`,
      verdict(p99 <= TARGET.readerP99Ms),
    ]),
  ];
  console.log(table(["target", "goal", "measured", "result"], targetRows));
  return problems;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}

try {
  const problems = report(await measure());
  if (problems.length > 0) console.log(`\nINVALID RUN:\n${problems.map((problem) => `- ${problem}`).join("\n")}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
} catch (error) {
  console.error("bench failed:", error);
  process.exitCode = 1;
} finally {
  await stopAll();
}
