/*
 * Forward throughput and memory: `node dist/cli/main.js forward <id> --to <target>`
 * runs as a child against an inbox that already holds a backlog, delivering to the
 * target child (bench/forward-target.ts). Its stdout (one line per delivery) is piped
 * and drained here, as a user's terminal or log would take it; each line counts as
 * progress. The time runs from spawning the forwarder until the target has seen every
 * seq of the backlog. Meanwhile the forwarder's RSS is sampled every 100 ms.
 */
import type { ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { Backlog } from "./backlog.js";
import { spawnNode, stopChild, type Tailhook } from "./children.js";
import type { TargetCommand, TargetReport } from "./forward-target.js";
import { cpuSeconds, rssWhen, sampleRss } from "./rss.js";

export interface ForwardTarget {
  url: string;
  child: ChildProcess;
}

export interface ForwardDrainResult {
  events: number;
  /** Seconds from spawning the forwarder until the target had every event (or the timeout). */
  seconds: number;
  eventsPerSecond: number;
  /** ms from spawning the forwarder until the target's first request. */
  startupMs: number;
  timedOut: boolean;
  /** Distinct seqs of the backlog the target received. */
  delivered: number;
  requests: number;
  outOfOrder: number;
  repeated: number;
  badSeq: number;
  stdoutLines: number;
  /** CPU time per delivered event, µs: the forwarder's, and the server's (reads and acks) over the same span. */
  forwarderCpuUs: number;
  serverCpuUs: number;
  peakRssKb: number;
  rss10Kb: number;
  rss90Kb: number;
  rssSamples: number;
  /** How the forwarder ended after SIGTERM, or earlier on its own ("exited early: …"). */
  exit: string;
  exitedEarly: boolean;
  stderrTail: string;
}

const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

function expect(target: ForwardTarget, command: TargetCommand): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (report: TargetReport) => {
      if (report.type !== "ready") return;
      target.child.off("message", onMessage);
      resolve();
    };
    target.child.on("message", onMessage);
    target.child.send(command);
  });
}

export async function drainForward(
  server: Tailhook,
  backlog: Backlog,
  target: ForwardTarget,
  consumer: string,
): Promise<ForwardDrainResult> {
  const events = backlog.count;
  const timeoutMs = 20_000 + events; // i.e. gives up below ~1,000 events/s
  await expect(target, { type: "expect", firstSeq: 1, lastSeq: events });

  let startupMs = Number.NaN;
  let done: Extract<TargetReport, { type: "done" }> | undefined;
  let doneAt = Number.NaN;
  let markDone = () => {};
  const finished = new Promise<void>((resolve) => (markDone = resolve));
  const onReport = (report: TargetReport) => {
    if (report.type === "first") startupMs = performance.now() - start;
    if (report.type === "done") {
      doneAt = performance.now();
      done = report;
      markDone();
    }
  };
  target.child.on("message", onReport);

  // TAILHOOK_CONFIG points nowhere, so no user config file is read; flags say the rest.
  const env = { ...process.env, TAILHOOK_CONFIG: join(tmpdir(), "tailhook-bench-no-config.json") };
  // "--" before the id: a base64url inbox id starts with "-" one time in 64, and would be taken for an option.
  const args = [
    CLI,
    "--server",
    server.url,
    "--token",
    backlog.inbox.token,
    "forward",
    "--to",
    target.url,
    "--consumer",
    consumer,
    "--",
    backlog.inbox.id,
  ];
  const serverCpuBefore = cpuSeconds(server.pid);
  const start = performance.now();
  const child = spawnNode(args, env);
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  let stdoutLines = 0;
  child.stdout!.on("data", (chunk: Buffer) => {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) stdoutLines++;
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000);
  });
  let exitedEarly = false;
  child.once("exit", () => {
    if (!done) exitedEarly = true;
    markDone();
  });
  const sampler = sampleRss(child.pid!, () => stdoutLines);
  const timer = setTimeout(markDone, timeoutMs);

  await finished;
  clearTimeout(timer);
  const end = done ? doneAt : performance.now();
  const highWater = sampler.highWaterKb();
  const forwarderCpu = cpuSeconds(child.pid!);
  const serverCpu = cpuSeconds(server.pid) - serverCpuBefore;
  sampler.stop();
  target.child.off("message", onReport);
  await stopChild(child);
  await closed;

  const seconds = (end - start) / 1000;
  const delivered = done?.distinct ?? Number.NaN;
  const settled = done ? events : stdoutLines;
  const samples = sampler.samples;
  const sampledPeak = Math.max(...samples.map((sample) => sample.rssKb));
  return {
    events,
    seconds,
    eventsPerSecond: settled / seconds,
    startupMs,
    timedOut: !done && !exitedEarly,
    delivered,
    requests: done?.requests ?? Number.NaN,
    outOfOrder: done?.outOfOrder ?? Number.NaN,
    repeated: done?.repeated ?? Number.NaN,
    badSeq: done?.badSeq ?? Number.NaN,
    stdoutLines,
    forwarderCpuUs: (forwarderCpu / settled) * 1e6,
    serverCpuUs: (serverCpu / settled) * 1e6,
    peakRssKb: Number.isFinite(highWater) ? Math.max(highWater, sampledPeak) : sampledPeak,
    rss10Kb: rssWhen(samples, events * 0.1),
    rss90Kb: rssWhen(samples, events * 0.9),
    rssSamples: samples.length,
    exit: `${exitedEarly ? "exited early: " : ""}${child.signalCode ?? child.exitCode}`,
    exitedEarly,
    stderrTail: stderr,
  };
}
