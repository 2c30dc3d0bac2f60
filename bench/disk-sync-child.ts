/*
 * The disk's own pace for large bodies: writes chunks of chunkBytes to a new file in
 * `dir` (the folder tailhook's data folder lives in, so the same filesystem) and
 * fdatasyncs after each, for `seconds`; reports MiB/s and the p50/p99 of one write +
 * fdatasync over IPC and removes the file. With small chunks it is the floor of one
 * small durable commit (the live phase: bench/live-latency.ts).
 * The file is reopened at the start every 256 MiB so the test does not fill the disk.
 */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { summarize } from "./stats.js";

const { dir, seconds, chunkBytes } = JSON.parse(process.argv[2]!) as { dir: string; seconds: number; chunkBytes: number };
const file = join(dir, `disk-sync-${process.pid}.bin`);
const chunk = randomBytes(chunkBytes);
const wrap = Math.max(1, Math.floor((256 * 1024 * 1024) / chunkBytes));
let fd = openSync(file, "w");
let chunks = 0;
const syncMs: number[] = [];
const start = performance.now();
const end = start + seconds * 1000;
while (performance.now() < end) {
  if (chunks > 0 && chunks % wrap === 0) {
    closeSync(fd);
    fd = openSync(file, "w");
  }
  const before = performance.now();
  writeSync(fd, chunk);
  fdatasyncSync(fd);
  syncMs.push(performance.now() - before);
  chunks++;
}
const elapsed = (performance.now() - start) / 1000;
closeSync(fd);
rmSync(file, { force: true });
const { p50, p99 } = summarize(syncMs);
const mibPerSecond = (chunks * chunkBytes) / (1024 * 1024) / elapsed;
process.send!({ type: "done", chunks, mibPerSecond, syncP50Ms: p50, syncP99Ms: p99 }, () => process.disconnect());
