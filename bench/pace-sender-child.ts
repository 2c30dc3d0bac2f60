/*
 * The open-loop sender of the latency, live and fanout phases, in a process of its own:
 * POSTs `count` bodies at `rate` per second on a fixed schedule (whatever the replies
 * do) over `connections` keep-alive connections. Each body is { n, sentAt, pad } of
 * bodyBytes, sentAt on CLOCK_MONOTONIC (stats.monotonicMs), so a reader in another
 * process can subtract it. When every reply is in it reports over IPC: how many were
 * sent and failed, the achieved rate, and per 2xx reply its n, send and reply times.
 */
import { Agent, request } from "node:http";
import { monotonicMs, paddedJson } from "./stats.js";

export interface SenderChildArgs {
  url: string;
  rate: number;
  count: number;
  connections: number;
  bodyBytes: number;
  /** The first body's n (a warm-up run uses a range of its own); 0 when absent. */
  firstN?: number;
}

/** [n, sentAt, 2xx reply in] */
export type AckRow = [number, number, number];

export interface SenderChildReport {
  type: "done";
  sent: number;
  failures: number;
  /** Achieved send rate, requests/s. */
  rate: number;
  acks: AckRow[];
}

const args = JSON.parse(process.argv[2]!) as SenderChildArgs;
const agent = new Agent({ keepAlive: true, maxSockets: args.connections });
const interval = 1000 / args.rate;
const acks: AckRow[] = [];

function post(n: number): Promise<boolean> {
  const sentAt = monotonicMs();
  const body = paddedJson({ n, sentAt }, args.bodyBytes);
  const headers = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) };
  return new Promise((resolve) => {
    const req = request(args.url, { method: "POST", agent, headers }, (res) => {
      res.resume();
      res.on("end", () => {
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        if (ok) acks.push([n, sentAt, monotonicMs()]);
        resolve(ok);
      });
      res.on("error", () => resolve(false));
    });
    req.on("error", () => resolve(false));
    req.end(body);
  });
}

const replies: Array<Promise<boolean>> = [];
const start = monotonicMs();
await new Promise<void>((resolve) => {
  const tick = () => {
    const due = Math.min(args.count, Math.floor((monotonicMs() - start) / interval) + 1);
    while (replies.length < due) replies.push(post((args.firstN ?? 0) + replies.length));
    if (replies.length < args.count) setTimeout(tick, 1);
    else resolve();
  };
  tick();
});
// The last send is due one interval before the schedule ends.
const elapsedSeconds = (monotonicMs() - start + interval) / 1000;
const ok = await Promise.all(replies);
agent.destroy();
const report: SenderChildReport = {
  type: "done",
  sent: args.count,
  failures: ok.filter((success) => !success).length,
  rate: args.count / elapsedSeconds,
  acks,
};
process.send!(report, () => process.disconnect());
