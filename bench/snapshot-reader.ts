/*
 * The snapshot phase's reader, a child process of its own (so its parsing is not
 * counted against the server, and the bench process's event loop does not pace it):
 * one catch-up read of a state stream, page after page over keep-alive HTTP, either
 * from offset=snapshot (following snapshot: cursors until snapshot-end) or from -1
 * (until Stream-Up-To-Date). Each page is parsed as JSON, as a consumer would; the
 * reader counts the change messages and checks the snapshot's framing and key order.
 * Reports over IPC.
 */
import { performance } from "node:perf_hooks";

export interface SnapshotReadRequest {
  streamUrl: string;
  adminToken: string;
  mode: "snapshot" | "log";
}

export interface SnapshotReadResult {
  mode: SnapshotReadRequest["mode"];
  /** Change messages read: entities for a snapshot, messages for the log. */
  items: number;
  pages: number;
  bytes: number;
  seconds: number;
  /** The read's CPU time in this process, µs per item. */
  readerCpuUs: number;
  /** Framing or order problems (empty when the read is valid). */
  problems: string[];
}

interface Message {
  key?: string;
  headers: { operation?: string; control?: string };
}

async function read({ streamUrl, adminToken, mode }: SnapshotReadRequest): Promise<SnapshotReadResult> {
  const headers = { authorization: `Bearer ${adminToken}` };
  const problems: string[] = [];
  let items = 0;
  let pages = 0;
  let bytes = 0;
  const controls: string[] = [];
  let lastKey: string | undefined;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let offset = mode === "snapshot" ? "snapshot" : "-1"; ;) {
    const response = await fetch(`${streamUrl}?offset=${encodeURIComponent(offset)}`, { headers });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${mode} read: ${response.status} ${text.slice(0, 200)}`);
    pages++;
    bytes += Buffer.byteLength(text);
    for (const message of JSON.parse(text) as Message[]) {
      if (message.headers.control !== undefined) controls.push(message.headers.control);
      else {
        items++;
        // Keys are k<6 digits>: string order is the server's byte order.
        if (mode === "snapshot" && lastKey !== undefined && message.key! <= lastKey) problems.push(`key ${message.key} after ${lastKey}`);
        lastKey = message.key;
      }
    }
    offset = response.headers.get("stream-next-offset")!;
    const done = mode === "snapshot" ? !offset.startsWith("snapshot:") : response.headers.get("stream-up-to-date") === "true";
    if (done) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  if (mode === "snapshot" && controls.join(",") !== "snapshot-start,snapshot-end") problems.push(`controls: ${controls.join(",")}`);
  return { mode, items, pages, bytes, seconds, readerCpuUs: (cpu.user + cpu.system) / items, problems: problems.slice(0, 5) };
}

process.on("message", (request: SnapshotReadRequest) => {
  read(request).then(
    (result) => process.send!({ result }),
    (error: unknown) => process.send!({ error: String(error) }),
  );
});
