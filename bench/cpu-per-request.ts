/*
 * The cpu phase (issue #15 row 1): CPU time per durable webhook vs per bare node:http
 * request. Each server (a fresh child) takes the same closed-loop load (autocannon in
 * the bench process: 100 connections, 1 KiB JSON); the server's user + system CPU
 * over the measured window, all threads (/proc/<pid>/stat counts the whole thread
 * group: the main thread, the SQLite writer and checkpoint threads, libuv's pool), is
 * divided by the 2xx replies of that window; the same per thread from
 * /proc/<pid>/task/<tid>/stat.
 */
import { startBare, startTailhook } from "./children.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import { cpuSeconds, cpuSecondsByThread } from "./rss.js";

export interface CpuRun {
  load: LoadResult;
  cpuSeconds: number;
  requests: number;
  microsPerRequest: number;
  /** CPU µs per request by thread (/proc/<pid>/task/*), over the same window, busiest first. */
  perThread: Array<[name: string, micros: number]>;
}

export interface CpuFigures {
  bare: CpuRun;
  tailhook: CpuRun;
}

export interface CpuOptions {
  body: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
}

async function measured(pid: number, url: string, options: CpuOptions): Promise<CpuRun> {
  const load = { url, body: options.body, connections: options.connections };
  await runLoad({ ...load, seconds: options.warmupSeconds });
  const before = cpuSeconds(pid);
  const threadsBefore = cpuSecondsByThread(pid);
  const result = await runLoad({ ...load, seconds: options.seconds });
  const used = cpuSeconds(pid) - before;
  const threadsAfter = cpuSecondsByThread(pid);
  const requests = result.latencies.length;
  const perThread = [...threadsAfter]
    .map(([name, seconds]): [string, number] => [name, ((seconds - (threadsBefore.get(name) ?? 0)) * 1e6) / requests])
    .filter(([, micros]) => micros >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  return { load: result, cpuSeconds: used, requests, microsPerRequest: (used * 1e6) / requests, perThread };
}

export async function measureCpu(options: CpuOptions, progress: (message: string) => void): Promise<CpuFigures> {
  progress(`cpu: bare node:http, ${options.warmupSeconds} s warm-up + ${options.seconds} s`);
  const bareServer = await startBare();
  const bare = await measured(bareServer.pid, bareServer.url, options).finally(() => bareServer.stop());
  progress(`cpu: tailhook, ${options.warmupSeconds} s warm-up + ${options.seconds} s`);
  const server = await startTailhook();
  try {
    return { bare, tailhook: await measured(server.pid, (await server.createInbox()).ingestUrl, options) };
  } finally {
    await server.stop();
  }
}
