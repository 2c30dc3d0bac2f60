/*
 * The large phase (issue #15 row 8): durable MiB/s of 1 MiB webhooks vs the disk's own
 * write + fdatasync of 1 MiB chunks. The disk baseline (bench/disk-sync-child.ts, a
 * process of its own) writes in the folder that holds tailhook's data folder (the same
 * filesystem), then a fresh tailhook (max body 4 MiB) takes 1 MiB JSON POSTs from
 * autocannon over a few connections; MiB/s = 2xx replies × body size / s.
 */
import { dirname } from "node:path";
import { startTailhook } from "./children.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import { runDiskSync } from "./load-children.js";
import { paddedJson } from "./stats.js";

export interface LargeOptions {
  bodyBytes: number;
  connections: number;
  seconds: number;
  warmupSeconds: number;
}

export interface LargeFigures {
  options: LargeOptions;
  diskMibPerSecond: number;
  load: LoadResult;
  tailhookMibPerSecond: number;
}

export async function measureLarge(options: LargeOptions, progress: (message: string) => void): Promise<LargeFigures> {
  const server = await startTailhook({ env: { TAILHOOK_MAX_BODY_BYTES: String(4 * options.bodyBytes) } });
  try {
    progress(`large: the disk's write + fdatasync of ${options.bodyBytes} B chunks, ${options.seconds} s`);
    const disk = await runDiskSync(dirname(server.dataDir), options.seconds, options.bodyBytes);
    progress(`large: tailhook ingest of ${options.bodyBytes} B JSON over ${options.connections} connections, ${options.seconds} s`);
    const body = paddedJson({ type: "bench.large" }, options.bodyBytes);
    const url = (await server.createInbox()).ingestUrl;
    await runLoad({ url, body, connections: options.connections, seconds: options.warmupSeconds });
    const load = await runLoad({ url, body, connections: options.connections, seconds: options.seconds });
    const mib = options.bodyBytes / (1024 * 1024);
    return { options, diskMibPerSecond: disk.mibPerSecond, load, tailhookMibPerSecond: load.requestsPerSecond * mib };
  } finally {
    await server.stop();
  }
}
