/*
 * Issue #15's table: every row with its same-run baseline, the ratio and PASS or MISS,
 * plus the detail tables of the phases that feed only this table (cpu, live, fanout,
 * large). The ingest and ds rows reuse those phases' figures. A row whose phase did
 * not run prints "not run".
 */
import type { CpuFigures } from "./cpu-per-request.js";
import type { DsServerFigures } from "./ds-bench.js";
import type { FanoutFigures } from "./fanout.js";
import type { LoadResult } from "./ingest-load.js";
import type { LargeFigures } from "./large-bodies.js";
import type { LiveFigures, LiveRunResult } from "./live-latency.js";
import { summarize } from "./stats.js";

export const ISSUE15_TARGET = {
  cpuRatio: 1.5,
  ingestRatio: 0.8,
  liveFloorMs: 5,
  liveRelayFactor: 2,
  holdsRate: 0.95,
  fanoutMs: 100,
  fanoutRssMiB: 300,
  dsWithReader: 0.95,
  dsVsReference: 40,
  largeVsDisk: 0.6,
  largeFloorMiBps: 100,
};

export interface Issue15Inputs {
  cpu?: CpuFigures;
  bare?: LoadResult;
  ingest?: LoadResult;
  live: LiveFigures[];
  fanout?: FanoutFigures;
  ds?: DsServerFigures[];
  large?: LargeFigures;
}

type Table = (header: string[], rows: string[][]) => string;

const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "-");
const times = (value: number) => `${fixed(value)}x`;
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
const median = (values: number[]) => summarize(values).p50;

function liveProblems(name: string, run: LiveRunResult, problems: string[]): void {
  if (run.failures > 0) problems.push(`${name}: ${run.failures} POSTs failed`);
  if (run.received < run.acknowledged) problems.push(`${name}: the reader got ${run.received} of ${run.acknowledged} acknowledged events`);
  if (run.duplicates > 0) problems.push(`${name}: ${run.duplicates} events delivered twice`);
}

/** Prints the detail tables and the issue table; adds what makes the run invalid to problems. */
export function reportIssue15(inputs: Issue15Inputs, table: Table, problems: string[]): void {
  const T = ISSUE15_TARGET;
  const rows: string[][] = [];
  const notRun = (measure: string, phase: string) => rows.push([measure, "not run", "", "", "", `(BENCH_ONLY lacks ${phase})`]);

  const { cpu } = inputs;
  if (cpu) {
    console.log("\nCPU per request (cpu): server user + system CPU, all threads, from /proc/<pid>/stat, over the measured window\n");
    const detail = (name: string, run: CpuFigures["bare"]) => {
      if (run.load.non2xx + run.load.errors > 0) problems.push(`cpu ${name}: ${run.load.non2xx} non-2xx, ${run.load.errors} errors`);
      const threads = run.perThread
        .slice(0, 4)
        .map(([thread, micros]) => `${thread} ${fixed(micros, 1)}`)
        .join(", ");
      return [
        name,
        fixed(run.load.requestsPerSecond, 0),
        String(run.requests),
        fixed(run.cpuSeconds),
        fixed(run.microsPerRequest, 1),
        threads,
      ];
    };
    console.log(
      table(
        ["server", "req/s", "2xx", "CPU s", "CPU µs/request", "µs/request by thread"],
        [detail("bare node:http", cpu.bare), detail("tailhook", cpu.tailhook)],
      ),
    );
    const ratio = cpu.tailhook.microsPerRequest / cpu.bare.microsPerRequest;
    rows.push([
      "1. CPU per durable webhook vs bare node:http request",
      `${fixed(cpu.tailhook.microsPerRequest, 1)} µs`,
      `${fixed(cpu.bare.microsPerRequest, 1)} µs`,
      times(ratio),
      `<= ${T.cpuRatio}x`,
      verdict(ratio <= T.cpuRatio),
    ]);
  } else notRun("1. CPU per durable webhook vs bare node:http request", "cpu");

  if (inputs.bare && inputs.ingest) {
    const ratio = inputs.ingest.requestsPerSecond / inputs.bare.requestsPerSecond;
    rows.push([
      "2. ingest req/s, 100 connections, 1 KiB JSON, vs bare node:http",
      fixed(inputs.ingest.requestsPerSecond, 0),
      fixed(inputs.bare.requestsPerSecond, 0),
      times(ratio),
      `>= ${T.ingestRatio}x`,
      verdict(ratio >= T.ingestRatio),
    ]);
  } else notRun("2. ingest req/s vs bare node:http", "ingest");

  if (inputs.live.length > 0) {
    console.log(
      "\nIngest→SSE reader (live): open-loop sender, one SSE reader, each in a process of its own; relay (stores nothing) and tailhook, fresh servers, after a paced warm-up second\n",
    );
    const detail: string[][] = [];
    for (const figures of inputs.live) {
      const { rate, connections, seconds } = figures.options;
      for (const [name, run] of [
        ["relay", figures.relay],
        ["tailhook", figures.tailhook],
      ] as const) {
        liveProblems(`live ${rate}/s ${name}`, run, problems);
        const got = summarize(run.latencies);
        const ack = summarize(run.ackLatencies);
        detail.push([
          `${rate}/s over ${connections} conns, ${seconds} s`,
          name,
          String(run.sent),
          fixed(run.achievedRate, 0),
          String(run.received),
          fixed(got.p50),
          fixed(got.p99),
          fixed(got.max),
          fixed(ack.p50),
          fixed(ack.p99),
        ]);
      }
    }
    console.log(table(["load", "server", "sent", "2xx/s", "received", "p50 ms", "p99 ms", "max ms", "ack p50 ms", "ack p99 ms"], detail));
    console.log(
      "\nThe disk's floor (write + fdatasync of 8 KiB next to the data folder, 2 s, before each tailhook run): one commit per round trip caps N connections at N / p50 replies/s\n",
    );
    const floors = inputs.live.map(({ options, disk }) => [
      `${options.rate}/s over ${options.connections} conns`,
      fixed(disk.syncP50Ms),
      fixed(disk.syncP99Ms),
      fixed(options.connections / (disk.syncP50Ms / 1000), 0),
    ]);
    console.log(table(["load", "sync p50 ms", "sync p99 ms", "cap replies/s"], floors));
  }
  const liveRow = (rate: number, label: string, holdRate: boolean) => {
    const figures = inputs.live.find((entry) => entry.options.rate === rate);
    if (!figures) return notRun(label, "live");
    const tailhook = summarize(figures.tailhook.latencies).p99;
    const relay = summarize(figures.relay.latencies).p99;
    const bound = Math.max(T.liveFloorMs, T.liveRelayFactor * relay);
    rows.push([
      label,
      `p99 ${fixed(tailhook)} ms`,
      `p99 ${fixed(relay)} ms`,
      times(tailhook / relay),
      `<= ${fixed(bound)} ms`,
      verdict(tailhook <= bound),
    ]);
    if (holdRate) {
      const held = figures.tailhook.achievedRate / rate;
      rows.push([
        `${label}: holds the rate`,
        `${fixed(figures.tailhook.achievedRate, 0)} 2xx/s`,
        `${rate}/s offered (relay ${fixed(figures.relay.achievedRate, 0)})`,
        times(held),
        `>= ${T.holdsRate}x`,
        // A relay that cannot hold the rate either means the machine, not tailhook, set the pace.
        `${verdict(held >= T.holdsRate)}${figures.relay.achievedRate < T.holdsRate * rate ? " (relay fell behind too)" : ""}`,
      ]);
    }
  };
  liveRow(500, "3. ingest→SSE p99 at 500 req/s over 4 connections vs relay", false);
  liveRow(1000, "4. ingest→SSE p99 at 1,000 req/s, one live reader, vs relay", true);

  const { fanout } = inputs;
  if (fanout) {
    const { readers, readerProcesses } = fanout.options;
    console.log(
      `\nFan-out (fanout): one event at a time to ${readers} SSE readers of one inbox in ${readerProcesses} reader processes; ms from the POST's 2xx until the last reader had it\n`,
    );
    const detail = (name: string, run: FanoutFigures["relay"]) => {
      run.delivered.forEach((got, n) => {
        if (got < readers) problems.push(`fanout ${name}: event ${n} reached ${got} of ${readers} readers`);
      });
      if (run.closed > 0) problems.push(`fanout ${name}: ${run.closed} SSE responses ended early`);
      return [
        name,
        fixed(run.attachMs, 0),
        run.lastReaderMs.map((value) => fixed(value, 1)).join(" / "),
        fixed(median(run.lastReaderMs), 1),
        fixed(run.rssKb / 1024, 1),
        fixed(run.rssKb / readers, 1),
      ];
    };
    console.log(
      table(
        ["server", "attach ms", "last reader ms per event", "median ms", "RSS MiB", "RSS KiB/reader"],
        [detail("relay", fanout.relay), detail("tailhook", fanout.tailhook)],
      ),
    );
    const tailhook = median(fanout.tailhook.lastReaderMs);
    const relay = median(fanout.relay.lastReaderMs);
    rows.push([
      `5. one event to ${readers.toLocaleString("en-US")} SSE readers (median of ${fanout.options.events})`,
      `${fixed(tailhook, 1)} ms`,
      `${fixed(relay, 1)} ms (relay)`,
      times(tailhook / relay),
      `<= ${T.fanoutMs} ms`,
      verdict(tailhook <= T.fanoutMs),
    ]);
    const rss = fanout.tailhook.rssKb / 1024;
    rows.push([
      `5. server RSS with ${readers.toLocaleString("en-US")} SSE readers`,
      `${fixed(rss, 1)} MiB`,
      `${fixed(fanout.relay.rssKb / 1024, 1)} MiB (relay)`,
      times(rss / (fanout.relay.rssKb / 1024)),
      `<= ${T.fanoutRssMiB} MiB`,
      verdict(rss <= T.fanoutRssMiB),
    ]);
  } else notRun("5. one event to 10,000 SSE readers", "fanout");

  const tailhookDs = inputs.ds?.find((entry) => entry.kind === "tailhook");
  const referenceDs = inputs.ds?.find((entry) => entry.kind === "reference");
  if (tailhookDs?.append && tailhookDs.withReader) {
    const share = tailhookDs.withReader.requestsPerSecond / tailhookDs.append.requestsPerSecond;
    rows.push([
      "6. DS JSON appends with one SSE reader vs without",
      `${fixed(tailhookDs.withReader.requestsPerSecond, 0)} /s`,
      `${fixed(tailhookDs.append.requestsPerSecond, 0)} /s`,
      `${fixed(share * 100, 1)}%`,
      `>= ${T.dsWithReader * 100}%`,
      verdict(share >= T.dsWithReader),
    ]);
  } else notRun("6. DS JSON appends with one SSE reader vs without", "ds");
  if (tailhookDs?.append && referenceDs?.append) {
    const ratio = tailhookDs.append.requestsPerSecond / referenceDs.append.requestsPerSecond;
    rows.push([
      "7. DS appends vs @durable-streams/server (file store)",
      `${fixed(tailhookDs.append.requestsPerSecond, 0)} /s`,
      `${fixed(referenceDs.append.requestsPerSecond, 0)} /s`,
      times(ratio),
      `>= ${T.dsVsReference}x`,
      verdict(ratio >= T.dsVsReference),
    ]);
  } else notRun("7. DS appends vs @durable-streams/server", "ds (both servers)");

  const { large } = inputs;
  if (large) {
    if (large.load.non2xx + large.load.errors > 0) problems.push(`large: ${large.load.non2xx} non-2xx, ${large.load.errors} errors`);
    const ratio = large.tailhookMibPerSecond / large.diskMibPerSecond;
    // "≥ 100 MiB/s where the disk allows": the floor applies only if 0.6 × the disk reaches it.
    const floor = Math.min(T.largeFloorMiBps, T.largeVsDisk * large.diskMibPerSecond) === T.largeFloorMiBps ? T.largeFloorMiBps : 0;
    rows.push([
      `8. durable MiB/s of ${large.options.bodyBytes / (1024 * 1024)} MiB webhooks (${large.options.connections} connections) vs disk write + fdatasync`,
      `${fixed(large.tailhookMibPerSecond, 1)} MiB/s`,
      `${fixed(large.diskMibPerSecond, 1)} MiB/s`,
      times(ratio),
      `>= ${T.largeVsDisk}x${floor > 0 ? ` and >= ${floor} MiB/s` : " (disk < 167 MiB/s: no floor)"}`,
      verdict(ratio >= T.largeVsDisk && large.tailhookMibPerSecond >= floor),
    ]);
  } else notRun("8. durable MiB/s of 1 MiB webhooks vs the disk", "large");

  console.log("\nIssue #15 (every figure a same-run ratio)\n");
  console.log(table(["measure", "tailhook", "baseline (same run)", "ratio", "target", "result"], rows));
}
