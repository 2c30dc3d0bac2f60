/*
 * Memory and CPU of a child process, from /proc/<pid>/status and /proc/<pid>/stat
 * (Linux): VmRSS sampled on an interval, each sample tagged with the caller's progress
 * figure, VmHWM (the kernel's own peak RSS, which a sample can miss) and the CPU time
 * used so far read on demand.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface RssSample {
  /** ms since sampling started. */
  at: number;
  rssKb: number;
  progress: number;
}

export interface RssSampler {
  samples: RssSample[];
  /** VmHWM in kB now (call before the process exits); NaN if unreadable. */
  highWaterKb(): number;
  stop(): void;
}

function statusField(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN; // exited, or not Linux
  }
}

/** User + system CPU seconds the process used so far; NaN if unreadable. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after "(comm) ": state is [0], utime [11], stime [12], in clock ticks (100/s on Linux).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").at(-1)!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

export function sampleRss(pid: number, progress: () => number, intervalMs = 100): RssSampler {
  const samples: RssSample[] = [];
  const start = performance.now();
  const take = () => {
    const rssKb = statusField(pid, "VmRSS");
    if (Number.isFinite(rssKb)) samples.push({ at: performance.now() - start, rssKb, progress: progress() });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return { samples, highWaterKb: () => statusField(pid, "VmHWM"), stop: () => clearInterval(timer) };
}

/** RSS of the first sample whose progress reached `value`; NaN when none did. */
export function rssWhen(samples: readonly RssSample[], value: number): number {
  return samples.find((sample) => sample.progress >= value)?.rssKb ?? Number.NaN;
}

/** VmRSS of the process now, kB; NaN if unreadable. */
export function rssNowKb(pid: number): number {
  return statusField(pid, "VmRSS");
}

/**
 * CPU seconds so far per thread (/proc/<pid>/task/<tid>), keyed "main" for the main
 * thread and "<comm>/<tid>" for the others (Node 20's worker threads are all named
 * "node", so the tid tells them apart); empty if unreadable.
 */
export function cpuSecondsByThread(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const tid of tids) {
    try {
      const name = tid === String(pid) ? "main" : `${readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim()}/${tid}`;
      const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ").at(-1)!.split(" ");
      byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}
