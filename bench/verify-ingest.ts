/*
 * The verify phase: ingest into an inbox that checks an HMAC-SHA256 signature (the
 * github scheme, enforcing, so a request that failed verification would show as a
 * non-2xx) against a plain inbox on the same fresh server, in windows taken in turns so
 * both rates come from the same run under the same conditions. The signature is
 * computed once here: the body is the same for every request. Each row also gives the
 * tailhook child's CPU time per request (user + system, from /proc), which the other
 * processes on a shared machine disturb far less than the rate.
 *
 * A second plain inbox is an A/A control: its ratio to the first shows the noise floor
 * of the method. The three take the window slots of a round in rotating order (a Latin
 * square over every three rounds), because a slot can carry a bias of its own: an A/A
 * run with a fixed order gave 0.97x for whichever inbox went second.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { Tailhook } from "./children.js";
import { runLoad, type LoadResult } from "./ingest-load.js";
import { cpuSeconds } from "./rss.js";
import { summarize } from "./stats.js";

export interface VerifyIngestOptions {
  body: string;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  windowSeconds: number;
}

export type VerifyRow = LoadResult & {
  /** The tailhook child's CPU time per 2xx over the row's windows, µs. */
  cpuMicrosPerRequest: number;
};

export interface VerifyIngestResult {
  off: VerifyRow;
  on: VerifyRow;
  /** A second plain inbox, measured like the others: control / off is the A/A ratio. */
  control: VerifyRow;
  /** The verdict stored with the verified inbox's first event. */
  verdict: unknown;
}

type Window = { load: LoadResult; cpuSeconds: number };

function combine(measured: Window[]): VerifyRow {
  const windows = measured.map((window) => window.load);
  const latencies = windows.flatMap((window) => window.latencies);
  const { p50, p99 } = summarize(latencies);
  return {
    // The windows are equally long: the mean of their rates is the rate over all of them.
    requestsPerSecond: windows.reduce((sum, window) => sum + window.requestsPerSecond, 0) / windows.length,
    p50,
    p99,
    non2xx: windows.reduce((sum, window) => sum + window.non2xx, 0),
    errors: windows.reduce((sum, window) => sum + window.errors, 0),
    latencies,
    cpuMicrosPerRequest: (measured.reduce((sum, window) => sum + window.cpuSeconds, 0) / latencies.length) * 1e6,
  };
}

export async function measureVerifyIngest(
  tailhook: Tailhook,
  adminToken: string,
  options: VerifyIngestOptions,
): Promise<VerifyIngestResult> {
  const secret = randomBytes(20).toString("hex");
  const plain = await tailhook.createInbox();
  const control = await tailhook.createInbox();
  const verified = await tailhook.createInbox({ verify: { scheme: "github", secrets: [secret], mode: "enforce" } });
  const headers = { "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(options.body).digest("hex")}` };
  // Both inboxes get the same signed requests (a sender signs whether or not the receiver
  // checks), so the ratio is the cost of checking and storing the verdict, not of a header.
  const load = (url: string, seconds: number) => runLoad({ url, body: options.body, connections: options.connections, seconds, headers });
  const measure = async (url: string, seconds: number): Promise<Window> => {
    const before = cpuSeconds(tailhook.pid);
    const result = await load(url, seconds);
    return { load: result, cpuSeconds: cpuSeconds(tailhook.pid) - before };
  };

  const inboxes = [plain, verified, control];
  for (const inbox of inboxes) await load(inbox.ingestUrl, options.warmupSeconds);
  // Whole Latin squares: every inbox takes every slot equally often.
  const rounds = Math.max(3, Math.ceil(options.seconds / options.windowSeconds / 3) * 3);
  const windows: Window[][] = inboxes.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let slot = 0; slot < inboxes.length; slot++) {
      const index = (round + slot) % inboxes.length;
      windows[index]!.push(await measure(inboxes[index]!.ingestUrl, options.windowSeconds));
    }
  }
  const [off, on, controlWindows] = windows as [Window[], Window[], Window[]];
  const first = await fetch(`${tailhook.url}/api/inboxes/${verified.id}/events/1`, { headers: { authorization: `Bearer ${adminToken}` } });
  const verdict = first.status === 200 ? ((await first.json()) as { verification?: unknown }).verification : `HTTP ${first.status}`;
  return { off: combine(off), on: combine(on), control: combine(controlWindows), verdict };
}
