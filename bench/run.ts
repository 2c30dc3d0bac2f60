/*
 * `npm run bench`: measures tailhook's ingest against a bare node:http baseline, its
 * ingest→reader latency, and, on an inbox holding a backlog, the SSE catch-up read
 * rate and `tailhook forward`'s throughput and memory; then prints the figures as
 * markdown tables next to the targets. The `pg` phase compares ingest on SQLite and on
 * PostgreSQL (one and two processes); it runs by default only when BENCH_PG_URL or
 * TAILHOOK_TEST_PG_URL is set. The `ds` phase compares tailhook's Durable Streams
 * endpoint with the reference server (@durable-streams/server): JSON-mode append
 * throughput with and without an SSE reader, and append→reader latency
 * (BENCH_DS_SERVERS=reference or =tailhook runs one side only, BENCH_DS_RATE sets the
 * paced rate). The `verify` phase compares ingest into an inbox that checks an HMAC-SHA256
 * signature with ingest into a plain one, on one server, in windows taken in turns.
 * The `smtp` phase compares mail through the SMTP door (10 KiB messages, 16
 * connections, its load generator in a process of its own) with webhook ingest of the
 * same bytes, on one server, in windows taken in turns.
 * The `compaction` phase appends 1,000,000 updates over 10,000 keys to a compacted
 * state stream and compares its disk use with the size of one snapshot
 * (BENCH_COMPACTION_UPDATES=100000 for a quick check).
 * The `snapshot` phase reads the state of 100,000 keys from offset=snapshot (entities/s)
 * and, as its baseline, the same 100,000 inserts from -1 (messages/s), in a reader child.
 * Issue #15's phases: `cpu` (CPU per request, from /proc), `live` (ingest→SSE latency
 * against a relay that stores nothing, sender and reader in processes of their own),
 * `fanout` (one event to 10,000 SSE readers) and `large` (1 MiB webhooks vs the disk's
 * own write + fdatasync); its table, printed last, also takes the ingest and ds figures.
 * BENCH_ONLY=ingest,cpu,latency,live,fanout,large,catchup,forward,pg,ds,verify,smtp,compaction,snapshot runs some phases only.
 * A missed target is reported, never fatal (this is a report, not a test); an invalid
 * run (errors, non-2xx replies, lost events) or a crash exits 1.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fillBacklog, type Backlog } from "./backlog.js";
import { readCatchUp, type CatchUpResult } from "./catchup-read.js";
import { startBare, startForwardTarget, startTailhook, stopAll } from "./children.js";
import { measureDs, type DsLoadFigures, type DsServerFigures } from "./ds-bench.js";
import type { DsServerKind } from "./ds-servers.js";
import { drainForward, type ForwardDrainResult } from "./forward-drain.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import { measurePostgresIngest, pgBenchUrl, redactUrl, type PgIngestResult } from "./postgres-ingest.js";
import { measureReaderLatency, type ReaderLatencyOptions, type ReaderLatencyResult } from "./reader-latency.js";
import { paddedJson, summarize } from "./stats.js";
import { measureVerifyIngest, type VerifyIngestResult } from "./verify-ingest.js";
import { measureSmtpIngest, type SmtpIngestResult } from "./smtp-ingest.js";
import { measureCompactionDisk, type CompactionDiskResult } from "./compaction-disk.js";
import { measureSnapshotRead, medianRate, type SnapshotPhaseResult, type TimedRead } from "./snapshot-read.js";
import { measureCpu, type CpuFigures } from "./cpu-per-request.js";
import { measureFanout, type FanoutFigures } from "./fanout.js";
import { reportIssue15, ISSUE15_TARGET } from "./issue15-report.js";
import { measureLarge, type LargeFigures } from "./large-bodies.js";
import { measureLive, type LiveFigures } from "./live-latency.js";

function positiveSeconds(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`BENCH_SECONDS must be a positive number, got ${raw}`);
  return value;
}

function compactionUpdates(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 1_000_000;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 10_000)
    throw new Error(`BENCH_COMPACTION_UPDATES must be a whole number from 10000, got ${raw}`);
  return value;
}

const PHASES = [
  "ingest",
  "cpu",
  "latency",
  "live",
  "fanout",
  "large",
  "catchup",
  "forward",
  "pg",
  "ds",
  "verify",
  "smtp",
  "compaction",
  "snapshot",
] as const;
type Phase = (typeof PHASES)[number];
const PG_URL = pgBenchUrl();

function selectedPhases(raw: string | undefined): Set<Phase> {
  if (raw === undefined || raw.trim() === "") {
    if (PG_URL !== undefined) return new Set(PHASES);
    console.log(
      "Phase pg skipped: set BENCH_PG_URL=postgres://user@host:5432/db (or TAILHOOK_TEST_PG_URL) to compare ingest on PostgreSQL.",
    );
    return new Set(PHASES.filter((phase) => phase !== "pg"));
  }
  const names = raw
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(PHASES as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: unknown phase ${name} (phases: ${PHASES.join(", ")})`);
  }
  if (names.includes("pg") && PG_URL === undefined)
    throw new Error("BENCH_ONLY: phase pg needs BENCH_PG_URL=postgres://… (or TAILHOOK_TEST_PG_URL)");
  return new Set(names as Phase[]);
}

function dsServers(raw: string | undefined): DsServerKind[] {
  if (raw === undefined || raw.trim() === "") return ["reference", "tailhook"];
  const names = raw
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of names) {
    if (name !== "reference" && name !== "tailhook")
      throw new Error(`BENCH_DS_SERVERS: unknown server ${name} (servers: reference, tailhook)`);
  }
  return names as DsServerKind[];
}

function dsRate(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 100;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`BENCH_DS_RATE must be a positive number of appends per second, got ${raw}`);
  return value;
}

const ONLY = selectedPhases(process.env.BENCH_ONLY);
const INGEST_SECONDS = positiveSeconds(process.env.BENCH_SECONDS, 10);
const WARMUP_SECONDS = 2;
const CONNECTIONS = 100;
const BODY_BYTES = 1024;
const READER: ReaderLatencyOptions = { rate: 1000, seconds: 5, connections: 4, bodyBytes: BODY_BYTES };
/** Backlogs, in events of BODY_BYTES: the large one is read by SSE and forwarded, the small one forwarded. */
const BACKLOG = { large: 100_000, small: 20_000 };
/** SSE catch-up reads of the large backlog, one after the other; the verdict takes their median. */
const CATCH_UP_READS = 3;
const TARGET = {
  ratio: 0.8,
  ingestP99Ms: 15,
  readerP99Ms: 5,
  catchUpPerSecond: 50_000,
  forwardPerSecond: 2_000,
  /** "Flat": peak RSS for the large backlog vs the small one, and RSS at 90% vs 10% of a drain. */
  rssGrowth: 1.25,
  /** ds phase: tailhook's append throughput over the reference server's. */
  dsRatio: ISSUE15_TARGET.dsVsReference,
  /** ds phase: at most this share of tailhook's append throughput lost with one SSE reader attached. */
  dsReaderDrop: 1 - ISSUE15_TARGET.dsWithReader,
  /** compaction phase: disk pages in use over the size of one snapshot. */
  compactionRatio: 3,
  /** verify phase: ingest with HMAC-SHA256 verification on, over ingest with it off. */
  verifyRatio: 0.9,
};
/** The compaction phase: 1,000,000 updates by default (BENCH_COMPACTION_UPDATES for a quick check), 10,000 keys. */
const COMPACTION = { updates: compactionUpdates(process.env.BENCH_COMPACTION_UPDATES), keys: 10_000 };
/** The snapshot phase: 100,000 keys, each read kind this many times in turns. */
const SNAPSHOT = { keys: 100_000, reads: 3 };
/** The live phase (issue #15 rows 3 and 4): paced rates, one SSE reader; capped at 5 s a run. */
const LIVE = { rates: [500, 1000], connections: 4, seconds: Math.min(INGEST_SECONDS, 5) };
/** The fanout phase (issue #15 row 5): 2,500 SSE connections per reader process. */
const FANOUT = { readers: 10_000, readerProcesses: 4, events: 3 };
/** The large phase (issue #15 row 8). */
const LARGE = { bodyBytes: 1024 * 1024, connections: 4 };
/** The smtp phase: 10 KiB messages over 16 connections, SMTP and webhook windows in turns. */
const SMTP = { messageBytes: 10 * 1024, connections: 16, windowSeconds: 2 };
/** The verify phase's windows: off and on in turns, this long each. */
const VERIFY_WINDOW_SECONDS = 2;
/** The ds phase: JSON-mode appends of DS.bodyBytes to a Durable Stream, on both servers. */
const DS = {
  servers: dsServers(process.env.BENCH_DS_SERVERS),
  connections: CONNECTIONS,
  bodyBytes: 150,
  /** 100/s by default: the reference server commits one append at a time (~200-400/s on this machine), so 200/s already queues there. */
  latency: { rate: dsRate(process.env.BENCH_DS_RATE), connections: 4 },
  /** Each figure is the sum of windows this long, taken in turns (bench/ds-bench.ts explains why). */
  windowSeconds: 2,
};

interface Figures {
  loadBefore: number;
  bare?: LoadResult;
  ingest?: LoadResult;
  readers: Array<[name: string, result: ReaderLatencyResult]>;
  fills: Backlog[];
  catchUps: CatchUpResult[];
  forwards: ForwardDrainResult[];
  pg?: PgIngestResult;
  ds?: DsServerFigures[];
  verify?: VerifyIngestResult;
  smtp?: SmtpIngestResult;
  compaction?: CompactionDiskResult;
  snapshot?: SnapshotPhaseResult;
  cpu?: CpuFigures;
  live: LiveFigures[];
  fanout?: FanoutFigures;
  large?: LargeFigures;
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

async function measure(): Promise<Figures> {
  const figures: Figures = { loadBefore: loadavg()[0]!, readers: [], fills: [], catchUps: [], forwards: [], live: [] };
  const body = paddedJson({ type: "bench.event", source: "tailhook-bench" }, BODY_BYTES);
  const load = async (url: string): Promise<LoadResult> => {
    await runLoad({ url, body, connections: CONNECTIONS, seconds: WARMUP_SECONDS });
    return runLoad({ url, body, connections: CONNECTIONS, seconds: INGEST_SECONDS });
  };

  if (ONLY.has("ingest")) {
    progress(`bare node:http ingest, ${WARMUP_SECONDS} s warm-up + ${INGEST_SECONDS} s`);
    const bareServer = await startBare();
    figures.bare = await load(bareServer.url);
    await bareServer.stop();

    progress(`tailhook ingest, ${WARMUP_SECONDS} s warm-up + ${INGEST_SECONDS} s`);
    const loaded = await startTailhook();
    figures.ingest = await load((await loaded.createInbox()).ingestUrl);
    await loaded.stop();
  }

  if (ONLY.has("cpu")) {
    figures.cpu = await measureCpu({ body, connections: CONNECTIONS, seconds: INGEST_SECONDS, warmupSeconds: WARMUP_SECONDS }, progress);
  }

  if (ONLY.has("live")) {
    for (const rate of LIVE.rates) {
      progress(`live: relay and tailhook, ${rate} req/s over ${LIVE.connections} connections for ${LIVE.seconds} s, one SSE reader`);
      figures.live.push(await measureLive({ rate, seconds: LIVE.seconds, connections: LIVE.connections, bodyBytes: BODY_BYTES }));
    }
  }

  if (ONLY.has("fanout")) figures.fanout = await measureFanout({ ...FANOUT, bodyBytes: BODY_BYTES }, progress);

  if (ONLY.has("large")) {
    figures.large = await measureLarge({ ...LARGE, seconds: Math.min(INGEST_SECONDS, 5), warmupSeconds: 1 }, progress);
  }

  if (ONLY.has("latency")) {
    // A fresh server, so the latency rows measure a steady state, not the aftermath of
    // the overload above (its WAL and checkpoint backlog); one paced second warms it up.
    const tailhook = await startTailhook();
    await measureReaderLatency("long-poll", await tailhook.createInbox(), { ...READER, seconds: 1 });
    for (const mode of ["long-poll", "sse"] as const) {
      progress(`ingest→reader latency, ${mode}, ${READER.rate} req/s for ${READER.seconds} s`);
      figures.readers.push([mode === "sse" ? "SSE" : mode, await measureReaderLatency(mode, await tailhook.createInbox(), READER)]);
    }
    await tailhook.stop();
  }

  if (ONLY.has("catchup") || ONLY.has("forward")) {
    // One more fresh server holds the backlogs: filled once, read by SSE, then drained by `tailhook forward`.
    const tailhook = await startTailhook();
    const sizes = ONLY.has("forward") ? [BACKLOG.small, BACKLOG.large] : [BACKLOG.large];
    for (const size of sizes) {
      progress(`filling a backlog of ${size} events`);
      figures.fills.push(await fillBacklog(tailhook.url, await tailhook.createInbox(), size, body));
    }
    const large = figures.fills.at(-1)!;
    await sleep(1000); // let the checkpoint thread catch up with the fill

    if (ONLY.has("catchup")) {
      progress(`SSE catch-up read of ${large.count} events, ${CATCH_UP_READS} times`);
      for (let read = 0; read < CATCH_UP_READS; read++) figures.catchUps.push(await readCatchUp(tailhook, large.inbox));
    }
    if (ONLY.has("forward")) {
      const target = await startForwardTarget();
      for (const backlog of figures.fills) {
        progress(`tailhook forward, draining ${backlog.count} events`);
        figures.forwards.push(await drainForward(tailhook, backlog, target, "bench-forward"));
      }
      await target.stop();
    }
    await tailhook.stop();
  }

  if (ONLY.has("pg") && PG_URL !== undefined) {
    figures.pg = await measurePostgresIngest({
      url: PG_URL,
      body,
      connections: CONNECTIONS,
      warmupSeconds: WARMUP_SECONDS,
      seconds: INGEST_SECONDS,
      progress,
    });
  }

  if (ONLY.has("ds")) {
    figures.ds = await measureDs({ ...DS, seconds: INGEST_SECONDS, warmupSeconds: WARMUP_SECONDS, progress });
  }

  if (ONLY.has("verify")) {
    progress(`ingest with verification on and off, in ${VERIFY_WINDOW_SECONDS} s windows taken in turns, ~${INGEST_SECONDS} s each`);
    const adminToken = `bench_${randomBytes(24).toString("hex")}`;
    const tailhook = await startTailhook({ adminToken });
    figures.verify = await measureVerifyIngest(tailhook, adminToken, {
      body,
      connections: CONNECTIONS,
      warmupSeconds: WARMUP_SECONDS,
      seconds: INGEST_SECONDS,
      windowSeconds: VERIFY_WINDOW_SECONDS,
    });
    await tailhook.stop();
  }

  if (ONLY.has("smtp")) {
    figures.smtp = await measureSmtpIngest({ ...SMTP, warmupSeconds: WARMUP_SECONDS, seconds: INGEST_SECONDS, progress });
  }

  if (ONLY.has("compaction")) {
    const adminToken = `bench_${randomBytes(24).toString("hex")}`;
    figures.compaction = await measureCompactionDisk({ ...COMPACTION, adminToken, progress });
  }

  if (ONLY.has("snapshot")) {
    const adminToken = `bench_${randomBytes(24).toString("hex")}`;
    figures.snapshot = await measureSnapshotRead({ ...SNAPSHOT, adminToken, progress });
  }
  return figures;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}

const ms = (value: number) => value.toFixed(2);
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");

const count = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-");
const mib = (kb: number) => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : "-");

/** Prints the tables; returns what makes the run invalid (empty when it is valid). */
function report({
  loadBefore,
  bare,
  ingest,
  readers,
  fills,
  catchUps,
  forwards,
  pg,
  ds,
  verify,
  smtp,
  compaction,
  snapshot,
  cpu: cpuFigures,
  live,
  fanout,
  large,
}: Figures): string[] {
  const problems: string[] = [];
  const targetRows: string[][] = [];
  const cpu = cpus();
  console.log(
    `\n## tailhook benchmark: ${new Date().toISOString()}, ${cpu.length} cores (${cpu[0]?.model ?? "?"}), Node ${process.version}`,
  );
  console.log(`1-min load average before the run: ${loadBefore.toFixed(2)} (other processes share these cores)`);
  if (process.env.BENCH_ONLY) console.log(`Phases: ${[...ONLY].join(", ")} (BENCH_ONLY)`);

  if (bare && ingest) {
    const ratio = ingest.requestsPerSecond / bare.requestsPerSecond;
    console.log(
      `\nIngest: POST ${BODY_BYTES} B JSON, ${CONNECTIONS} connections, ${INGEST_SECONDS} s each after ${WARMUP_SECONDS} s warm-up\n`,
    );
    const ingestRows = (
      [
        ["bare node:http", bare],
        ["tailhook", ingest],
      ] as const
    ).map(([name, result]) => {
      if (result.non2xx + result.errors > 0) problems.push(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      return [name, result.requestsPerSecond.toFixed(0), ms(result.p50), ms(result.p99), String(result.non2xx), String(result.errors)];
    });
    ingestRows.push(["tailhook / bare", `${ratio.toFixed(2)}x`, "", "", "", ""]);
    console.log(table(["server", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors"], ingestRows));
    targetRows.push(
      ["ingest throughput, tailhook / bare", `>= ${TARGET.ratio}x`, `${ratio.toFixed(2)}x`, verdict(ratio >= TARGET.ratio)],
      ["ingest p99 (100 connections)", `<= ${TARGET.ingestP99Ms} ms`, `${ms(ingest.p99)} ms`, verdict(ingest.p99 <= TARGET.ingestP99Ms)],
    );
  }

  if (readers.length > 0) {
    const { rate, connections, seconds } = READER;
    console.log(
      `\nIngest→reader: open-loop ${rate} req/s over ${connections} connections for ${seconds} s, read from "now", fresh server\n`,
    );
    const readerRows = readers.map(([name, result]) => {
      if (result.sendFailures > 0) problems.push(`${name}: ${result.sendFailures} ingest requests failed`);
      if (result.received !== result.sent) problems.push(`${name}: received ${result.received} of ${result.sent} events`);
      if (result.duplicates > 0) problems.push(`${name}: ${result.duplicates} events delivered twice`);
      const latency = summarize(result.latencies);
      const ack = summarize(result.ackLatencies);
      targetRows.push([
        `ingest→reader p99, ${name}`,
        `<= ${TARGET.readerP99Ms} ms`,
        `${ms(latency.p99)} ms`,
        verdict(latency.p99 <= TARGET.readerP99Ms),
      ]);
      const counts = [String(result.sent), result.sendRate.toFixed(0), String(result.received)];
      return [name, ...counts, ms(latency.p50), ms(latency.p99), ms(latency.max), ms(ack.p50), ms(ack.p99)];
    });
    console.log(table(["reader", "sent", "sent/s", "received", "p50 ms", "p99 ms", "max ms", "ack p50 ms", "ack p99 ms"], readerRows));
  }

  if (fills.length > 0) {
    console.log(`\nBacklogs: POST ${BODY_BYTES} B JSON, 50 connections, into a fresh server before the phases below\n`);
    const fillRows = fills.map((fill) => {
      if (fill.non2xx + fill.errors > 0) problems.push(`backlog fill: ${fill.non2xx} non-2xx, ${fill.errors} errors`);
      if (fill.count !== fill.requested) problems.push(`backlog fill: the inbox holds ${fill.count} events, ${fill.requested} were sent`);
      return [count(fill.count), fill.seconds.toFixed(2), count(fill.count / fill.seconds), String(fill.non2xx), String(fill.errors)];
    });
    console.log(table(["events", "s", "events/s", "non-2xx", "errors"], fillRows));
  }

  if (catchUps.length > 0) {
    const expected = fills.at(-1)!.count;
    console.log(
      `\nCatch-up read: one SSE reader from offset -1 until upToDate, in the bench process, ${catchUps.length} reads one after the other\n`,
    );
    const catchUpRows = catchUps.map((read, index) => {
      if (read.events !== expected || read.outOfOrder > 0) {
        problems.push(`SSE catch-up read ${index + 1}: read ${read.events} of ${expected} events, ${read.outOfOrder} out of sequence`);
      }
      return [
        String(index + 1),
        count(read.events),
        String(read.pages),
        (read.bytes / 2 ** 20).toFixed(0),
        ms(read.firstByteMs),
        read.seconds.toFixed(2),
        count(read.eventsPerSecond),
        (read.bytes / 2 ** 20 / read.seconds).toFixed(0),
        read.serverCpuUs.toFixed(1),
        read.readerCpuUs.toFixed(1),
      ];
    });
    const header = [
      "read",
      "events",
      "pages",
      "MiB",
      "first byte ms",
      "s",
      "events/s",
      "MiB/s",
      "server CPU µs/event",
      "reader CPU µs/event",
    ];
    console.log(table(header, catchUpRows));
    const rates = catchUps.map((read) => read.eventsPerSecond).sort((x, y) => x - y);
    const median = rates[Math.floor(rates.length / 2)]!;
    targetRows.push([
      `SSE catch-up read rate (median of ${rates.length})`,
      `>= ${count(TARGET.catchUpPerSecond)} events/s`,
      `${count(median)} events/s`,
      verdict(median >= TARGET.catchUpPerSecond),
    ]);
  }

  if (forwards.length > 0) {
    console.log(
      `\nForward: \`tailhook forward\` child draining a backlog to a target child that answers 200; stdout piped and drained; RSS sampled every 100 ms\n`,
    );
    const forwardRows = forwards.map((run) => {
      if (run.exitedEarly) problems.push(`forward ${run.events}: the forwarder exited early (${run.exit}): ${run.stderrTail.trim()}`);
      if (run.badSeq > 0) problems.push(`forward ${run.events}: ${run.badSeq} requests without a backlog seq`);
      const inOrder = run.outOfOrder === 0 && run.repeated === 0;
      const delivered = run.timedOut ? `${count(run.stdoutLines)} (timed out)` : count(run.delivered);
      targetRows.push([
        `forward throughput, ${count(run.events)} backlog`,
        `>= ${count(TARGET.forwardPerSecond)} events/s`,
        `${count(run.eventsPerSecond)} events/s`,
        verdict(!run.timedOut && run.eventsPerSecond >= TARGET.forwardPerSecond),
      ]);
      targetRows.push([
        `forward order, ${count(run.events)} backlog`,
        "in order, once each",
        run.timedOut ? "timed out" : `${run.outOfOrder} out of order, ${run.repeated} repeated`,
        verdict(!run.timedOut && inOrder),
      ]);
      return [
        count(run.events),
        delivered,
        `${run.outOfOrder} / ${run.repeated}`,
        count(run.stdoutLines),
        count(run.startupMs),
        run.seconds.toFixed(2),
        count(run.eventsPerSecond),
        count(run.forwarderCpuUs),
        count(run.serverCpuUs),
        mib(run.rss10Kb),
        mib(run.rss90Kb),
        mib(run.peakRssKb),
      ];
    });
    const header = [
      "backlog",
      "delivered",
      "out of order / repeated",
      "stdout lines",
      "startup ms",
      "s",
      "events/s",
      "forwarder CPU µs/event",
      "server CPU µs/event",
      "RSS @10% MiB",
      "RSS @90% MiB",
      "peak RSS MiB",
    ];
    console.log(table(header, forwardRows));
    // Only the largest drain: the first second or two of any drain is the V8 heap growing
    // to its working size, which on a short drain falls before the 10% mark.
    {
      const run = forwards.at(-1)!;
      const growth = run.rss90Kb / run.rss10Kb;
      targetRows.push([
        `forward RSS, 90% vs 10% of the ${count(run.events)} drain`,
        `<= ${TARGET.rssGrowth}x`,
        `${Number.isFinite(growth) ? growth.toFixed(2) : "-"}x (${mib(run.rss10Kb)} → ${mib(run.rss90Kb)} MiB)`,
        verdict(growth <= TARGET.rssGrowth),
      ]);
    }
    if (forwards.length === 2) {
      const [small, large] = forwards as [ForwardDrainResult, ForwardDrainResult];
      const growth = large.peakRssKb / small.peakRssKb;
      targetRows.push([
        `forward peak RSS, ${count(large.events)} vs ${count(small.events)} backlog`,
        `<= ${TARGET.rssGrowth}x`,
        `${growth.toFixed(2)}x (${mib(small.peakRssKb)} → ${mib(large.peakRssKb)} MiB)`,
        verdict(growth <= TARGET.rssGrowth),
      ]);
    }
  }

  if (pg) {
    console.log(
      `\nIngest on PostgreSQL (${redactUrl(PG_URL!)}, schema ${pg.schema}, dropped after): POST ${BODY_BYTES} B JSON, ${CONNECTIONS} connections in all, ${INGEST_SECONDS} s each after ${WARMUP_SECONDS} s warm-up\n`,
    );
    const base = pg.sqlite.requestsPerSecond;
    const rows: Array<[string, LoadResult, boolean]> = [
      ["(a) SQLite, 1 process", pg.sqlite, true],
      ["(b) PostgreSQL, 1 process", pg.pgOne, true],
      ...pg.pgTwo.parts.map((part, index): [string, LoadResult, boolean] => [
        `    process ${index + 1} of 2 (${CONNECTIONS / 2} connections)`,
        part,
        false,
      ]),
      ["(c) PostgreSQL, 2 processes (sum)", pg.pgTwo.total, true],
    ];
    const pgRows = rows.map(([name, result, counted]) => {
      if (counted && result.non2xx + result.errors > 0)
        problems.push(`pg ${name.trim()}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const ratio = counted ? `${(result.requestsPerSecond / base).toFixed(2)}x` : "";
      return [
        name,
        result.requestsPerSecond.toFixed(0),
        ratio,
        ms(result.p50),
        ms(result.p99),
        String(result.non2xx),
        String(result.errors),
      ];
    });
    console.log(table(["tailhook", "req/s", "vs (a)", "p50 ms", "p99 ms", "non-2xx", "errors"], pgRows));
    console.log(
      "\nOn one machine the second process competes for the same cores: row (c) shows the coordination cost, not a scale-out gain.",
    );
  }

  if (ds) reportDs(ds, problems, targetRows);
  if (verify) reportVerify(verify, problems, targetRows);
  if (smtp) reportSmtp(smtp, problems, targetRows);
  if (compaction) reportCompaction(compaction, problems, targetRows);
  if (snapshot) reportSnapshot(snapshot, problems, targetRows);

  if (targetRows.length > 0) {
    console.log("\nTargets\n");
    console.log(table(["target", "goal", "measured", "result"], targetRows));
  }
  reportIssue15({ cpu: cpuFigures, bare, ingest, live, fanout, ds, large }, table, problems);
  return problems;
}

/** The snapshot phase's table and its row (reported, no target). */
function reportSnapshot(result: SnapshotPhaseResult, problems: string[], targetRows: string[][]): void {
  console.log(
    `\nSnapshot read (snapshot): ${count(result.keys)} keys, one insert each (~100 B values), filled in ${result.fillSeconds.toFixed(1)} s;` +
      ` each read a catch-up read in a reader child (pages of 1000, parsed as JSON), from -1 and from offset=snapshot in turns, fresh SQLite server\n`,
  );
  const row = (name: string, read: TimedRead) => {
    for (const problem of read.problems) problems.push(`snapshot phase, ${name}: ${problem}`);
    if (read.items !== result.keys) problems.push(`snapshot phase, ${name}: read ${read.items} of ${result.keys} items`);
    return [
      name,
      count(read.items),
      String(read.pages),
      (read.bytes / 2 ** 20).toFixed(1),
      read.seconds.toFixed(2),
      count(read.itemsPerSecond),
      read.serverCpuUs.toFixed(1),
      read.readerCpuUs.toFixed(1),
    ];
  };
  const rows = result.logs.flatMap((log, index) => [
    row(`from -1 (log), ${index + 1}`, log),
    row(`offset=snapshot, ${index + 1}`, result.snapshots[index]!),
  ]);
  const snapshotRate = medianRate(result.snapshots);
  const logRate = medianRate(result.logs);
  const ratio = snapshotRate / logRate;
  rows.push(["snapshot / log (medians)", "", "", "", "", `${ratio.toFixed(2)}x`, "", ""]);
  console.log(table(["read", "items", "pages", "MiB", "s", "items/s", "server CPU µs/item", "reader CPU µs/item"], rows));
  targetRows.push([
    `snapshot read rate, ${count(result.keys)} keys (median of ${result.snapshots.length})`,
    "reported (no target)",
    `${count(snapshotRate)} entities/s; log from -1 ${count(logRate)} messages/s; ${ratio.toFixed(2)}x`,
    "-",
  ]);
}

/** The compaction phase's table and its target row. */
function reportCompaction(result: CompactionDiskResult, problems: string[], targetRows: string[][]): void {
  const kib = (bytes: number) => (bytes / 1024).toFixed(0);
  const ratio = result.usedBytes / result.snapshotBytes;
  if (Number.isNaN(result.settleSeconds)) problems.push(`compaction: a read from -1 still holds ${result.retainedMessages} messages`);
  console.log(
    `\nCompaction: ${count(result.updates)} upserts over ${count(result.keys)} keys into a state stream with Stream-Compact: key-frame ` +
      "(lag 1000), 4 writers appending 1000 at a time, prune every 1 s; SQLite; disk measured after the server stopped\n",
  );
  console.log(
    table(
      ["updates", "ingest s", "settle s", "retained", "snapshot KiB", "db file KiB", "pages in use KiB", "in use / snapshot"],
      [
        [
          count(result.updates),
          result.ingestSeconds.toFixed(1),
          result.settleSeconds.toFixed(1),
          count(result.retainedMessages),
          kib(result.snapshotBytes),
          kib(result.fileBytes),
          kib(result.usedBytes),
          `${ratio.toFixed(2)}x`,
        ],
      ],
    ),
  );
  targetRows.push([
    `disk after ${count(result.updates)} updates over ${count(result.keys)} keys, compacted`,
    `<= ${TARGET.compactionRatio}x one snapshot`,
    `${ratio.toFixed(2)}x (${kib(result.usedBytes)} KiB in use, file ${kib(result.fileBytes)} KiB, snapshot ${kib(result.snapshotBytes)} KiB)`,
    verdict(ratio <= TARGET.compactionRatio),
  ]);
}

/** The smtp phase's table; adds its problems and a row (reported, no target). */
function reportSmtp({ smtp, webhook, stored }: SmtpIngestResult, problems: string[], targetRows: string[][]): void {
  console.log(
    `\nMail through the SMTP door (smtp): ${SMTP.messageBytes} B messages, ${SMTP.connections} connections, one fresh server; SMTP (raw client with PIPELINING,` +
      ` in its own process) and webhook POSTs of the same bytes (autocannon), ${SMTP.windowSeconds} s windows in turns after ${WARMUP_SECONDS} s warm-up each, ~${INGEST_SECONDS} s per row\n`,
  );
  if (smtp.refused + smtp.errors > 0) problems.push(`smtp: ${smtp.refused} messages not answered 250, ${smtp.errors} connection errors`);
  if (webhook.non2xx + webhook.errors > 0) problems.push(`smtp, webhook side: ${webhook.non2xx} non-2xx, ${webhook.errors} errors`);
  if (stored.smtp === 0) problems.push("smtp: the mail inbox holds no events");
  const ratio = smtp.messagesPerSecond / webhook.requestsPerSecond;
  console.log(
    table(
      ["ingest", "msgs/s", "p50 ms", "p99 ms", "not 2xx/250", "errors"],
      [
        [
          "SMTP (250 after commit)",
          smtp.messagesPerSecond.toFixed(0),
          ms(smtp.p50),
          ms(smtp.p99),
          String(smtp.refused),
          String(smtp.errors),
        ],
        [
          "webhook (same bytes)",
          webhook.requestsPerSecond.toFixed(0),
          ms(webhook.p50),
          ms(webhook.p99),
          String(webhook.non2xx),
          String(webhook.errors),
        ],
        ["SMTP / webhook", `${ratio.toFixed(2)}x`, "", "", "", ""],
      ],
    ),
  );
  targetRows.push([
    "SMTP messages/s vs webhook ingest of the same bytes",
    "reported (no target)",
    `${ratio.toFixed(2)}x (${count(smtp.messagesPerSecond)} vs ${count(webhook.requestsPerSecond)} /s)`,
    "-",
  ]);
}

/** The verify phase's table; adds its problems and target row. */
function reportVerify({ off, on, control, verdict: stored }: VerifyIngestResult, problems: string[], targetRows: string[][]): void {
  console.log(
    `\nIngest with signature verification (verify): POST ${BODY_BYTES} B JSON, ${CONNECTIONS} connections, one fresh server, the same signed requests to a plain inbox, one verifying` +
      ` X-Hub-Signature-256 (HMAC-SHA256, enforce) and a second plain inbox (A/A control), ${VERIFY_WINDOW_SECONDS} s windows in rotating turns after ${WARMUP_SECONDS} s warm-up each, ~${INGEST_SECONDS} s per row\n`,
  );
  const named = [
    ["verification off", off],
    ["verification on (HMAC-SHA256)", on],
    ["verification off, second inbox (A/A control)", control],
  ] as const;
  const rows = named.map(([name, result]) => {
    if (result.non2xx + result.errors > 0) problems.push(`verify, ${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    const cpu = result.cpuMicrosPerRequest.toFixed(1);
    return [name, result.requestsPerSecond.toFixed(0), cpu, ms(result.p50), ms(result.p99), String(result.non2xx), String(result.errors)];
  });
  const ratio = on.requestsPerSecond / off.requestsPerSecond;
  const cpuRatio = on.cpuMicrosPerRequest / off.cpuMicrosPerRequest;
  rows.push(["on / off", `${ratio.toFixed(2)}x`, `${cpuRatio.toFixed(2)}x`, "", "", "", ""]);
  const controlRatio = control.requestsPerSecond / off.requestsPerSecond;
  const controlCpu = control.cpuMicrosPerRequest / off.cpuMicrosPerRequest;
  rows.push(["control / off (A/A: the method's noise)", `${controlRatio.toFixed(2)}x`, `${controlCpu.toFixed(2)}x`, "", "", "", ""]);
  console.log(table(["inbox", "req/s", "tailhook CPU µs/req", "p50 ms", "p99 ms", "non-2xx", "errors"], rows));
  if ((stored as { ok?: boolean } | undefined)?.ok !== true) {
    problems.push(`verify: the verified inbox's first event carries ${JSON.stringify(stored)}, not ok:true`);
  }
  targetRows.push([
    "ingest with verification on (HMAC-SHA256) vs off",
    `>= ${TARGET.verifyRatio}x`,
    `${ratio.toFixed(2)}x (${count(on.requestsPerSecond)} vs ${count(off.requestsPerSecond)} req/s)`,
    verdict(ratio >= TARGET.verifyRatio),
  ]);
}

/** The ds phase's tables; adds its problems and target rows. */
function reportDs(ds: DsServerFigures[], problems: string[], targetRows: string[][]): void {
  const { connections, bodyBytes, latency } = DS;
  const tailhook = ds.find((entry) => entry.kind === "tailhook");
  const reference = ds.find((entry) => entry.kind === "reference");
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : Number.NaN);
  const times = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}x` : "-");
  const percent = (value: number) => (Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "-");
  const range = (values: number[]) => (values.length === 0 ? "-" : `${count(Math.min(...values))}–${count(Math.max(...values))}`);
  const drop = (entry: DsServerFigures | undefined) => 1 - ratio(entry?.withReader?.requestsPerSecond, entry?.append?.requestsPerSecond);
  const blank = (name: string, columns: number) => [name, "failed", ...Array<string>(columns - 2).fill("")];
  for (const entry of ds) for (const failure of entry.failures) problems.push(`ds ${entry.name}: ${failure}`);
  const checkLoad = (what: string, entry: DsServerFigures, run: DsLoadFigures) => {
    if (run.non2xx + run.errors > 0) problems.push(`ds ${what}, ${entry.name}: ${run.non2xx} non-2xx, ${run.errors} errors`);
    if (run.stored < run.acknowledged)
      problems.push(`ds ${what}, ${entry.name}: the stream holds ${run.stored} messages, ${run.acknowledged} appends were acknowledged`);
  };

  console.log(
    `\nDurable Streams append (ds): POST ${bodyBytes} B JSON to a JSON-mode stream, ${connections} connections, both servers side by side (fresh, ${WARMUP_SECONDS} s warm-up each),` +
      ` measured in ${DS.windowSeconds} s windows taken in turns with the reader rows below, ~${INGEST_SECONDS} s per row\n`,
  );
  const appendRows = ds.map((entry) => {
    const run = entry.append;
    if (!run) return blank(entry.name, 10);
    checkLoad("append", entry, run);
    return [
      entry.name,
      count(run.requestsPerSecond),
      range(run.windowRates),
      ms(run.p50),
      ms(run.p99),
      String(run.non2xx),
      String(run.errors),
      count(run.acknowledged),
      count(run.stored),
      run.serverCpuUs.toFixed(1),
    ];
  });
  const appendRatio = ratio(tailhook?.append?.requestsPerSecond, reference?.append?.requestsPerSecond);
  if (tailhook && reference) appendRows.push(["tailhook / reference", times(appendRatio), ...Array<string>(8).fill("")]);
  console.log(
    table(["server", "req/s", "per window", "p50 ms", "p99 ms", "non-2xx", "errors", "2xx", "stored", "server CPU µs/append"], appendRows),
  );

  console.log(
    `\nThe same with one SSE reader (live=sse from offset -1, in a process of its own) following another stream on the same server\n`,
  );
  const readerRows = ds.map((entry) => {
    const run = entry.withReader;
    if (!run) return blank(entry.name, 12);
    checkLoad("append with a reader", entry, run);
    if (run.readerMessages !== run.stored)
      problems.push(
        `ds append with a reader, ${entry.name}: the reader got ${run.readerMessages} messages, the stream holds ${run.stored}`,
      );
    const lags = summarize(run.readerLagMs);
    return [
      entry.name,
      count(run.requestsPerSecond),
      range(run.windowRates),
      percent(drop(entry)),
      ms(run.p50),
      ms(run.p99),
      `${run.non2xx} / ${run.errors}`,
      `${count(run.acknowledged)} / ${count(run.stored)}`,
      `${count(run.readerMessages)} in ${count(run.readerDataEvents)} events`,
      `${count(lags.p50)} / ${count(lags.max)}`,
      run.serverCpuUs.toFixed(1),
      entry.append ? `${((run.serverCpuUs / entry.append.serverCpuUs - 1) * 100).toFixed(1)}%` : "-",
    ];
  });
  if (tailhook && reference)
    readerRows.push([
      "tailhook / reference",
      times(ratio(tailhook.withReader?.requestsPerSecond, reference.withReader?.requestsPerSecond)),
      ...Array<string>(10).fill(""),
    ]);
  const readerHeader = [
    "server",
    "req/s",
    "per window",
    "drop vs no reader",
    "p50 ms",
    "p99 ms",
    "non-2xx / errors",
    "2xx / stored",
    "reader got",
    "reader at tail after ms (median / max)",
    "server CPU µs/append",
    "CPU vs no reader",
  ];
  console.log(table(readerHeader, readerRows));
  for (const entry of ds) {
    const reconnects = (entry.withReader?.readerReconnects ?? 0) + (entry.latency?.readerReconnects ?? 0);
    if (reconnects > 0)
      console.log(
        `(${entry.name}: the server ended the SSE response ${reconnects} times; the readers reconnected from their last control offset)`,
      );
  }

  console.log(
    `\nAppend→reader latency (ds): open-loop ${latency.rate} appends/s over ${latency.connections} connections, a paced writer in a process of its own, one SSE reader from offset -1 in the bench process;` +
      ` two fresh servers side by side, ${DS.windowSeconds} s windows in turns after one paced second each, ~${INGEST_SECONDS} s per row\n`,
  );
  const latencyRows = ds.map((entry) => {
    const run = entry.latency;
    if (!run) return blank(entry.name, 9);
    if (run.sendFailures > 0) problems.push(`ds latency, ${entry.name}: ${run.sendFailures} appends failed`);
    if (run.received !== run.sent - run.sendFailures)
      problems.push(`ds latency, ${entry.name}: received ${run.received} of ${run.sent - run.sendFailures} messages`);
    if (run.duplicates > 0) problems.push(`ds latency, ${entry.name}: ${run.duplicates} messages delivered twice`);
    const got = summarize(run.latencies);
    const ack = summarize(run.ackLatencies);
    return [
      entry.name,
      String(run.sent),
      run.sendRate.toFixed(0),
      String(run.received),
      ms(got.p50),
      ms(got.p99),
      ms(got.max),
      ms(ack.p50),
      ms(ack.p99),
    ];
  });
  if (tailhook?.latency && reference?.latency) {
    const t = summarize(tailhook.latency.latencies);
    const r = summarize(reference.latency.latencies);
    latencyRows.push(["reference / tailhook", "", "", "", times(r.p50 / t.p50), times(r.p99 / t.p99), "", "", ""]);
  }
  console.log(table(["server", "sent", "sent/s", "received", "p50 ms", "p99 ms", "max ms", "ack p50 ms", "ack p99 ms"], latencyRows));

  if (tailhook && reference) {
    targetRows.push([
      "ds append throughput, tailhook / reference",
      `>= ${TARGET.dsRatio}x`,
      times(appendRatio),
      verdict(appendRatio >= TARGET.dsRatio),
    ]);
  }
  if (tailhook) {
    const tailhookDrop = drop(tailhook);
    targetRows.push([
      "ds append throughput drop with one SSE reader, tailhook",
      `<= ${percent(TARGET.dsReaderDrop)}`,
      percent(tailhookDrop),
      verdict(tailhookDrop <= TARGET.dsReaderDrop),
    ]);
  }
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
