/*
 * The target `tailhook forward` delivers to in the forward phase, run as its own child
 * process so it does not share an event loop with the bench. It answers 200 as soon
 * as each body is in, and checks X-Tailhook-Seq: the bench sends it the seq range to
 * expect over IPC, and it reports the first request and, once every seq of the range
 * arrived, the counts (requests, out of order, repeated).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export type TargetCommand = { type: "expect"; firstSeq: number; lastSeq: number };

export type TargetReport =
  | { type: "ready" }
  | { type: "first"; seq: number }
  | { type: "done"; requests: number; distinct: number; outOfOrder: number; repeated: number; badSeq: number };

let firstSeq = 1;
let seen = new Uint8Array(0);
let next = 1;
let requests = 0;
let distinct = 0;
let outOfOrder = 0;
let repeated = 0;
let badSeq = 0;
let reported = true;

function send(report: TargetReport): void {
  process.send?.(report);
}

process.on("message", (command: TargetCommand) => {
  if (command.type !== "expect") return;
  firstSeq = command.firstSeq;
  seen = new Uint8Array(command.lastSeq - command.firstSeq + 1);
  next = firstSeq;
  requests = distinct = outOfOrder = repeated = badSeq = 0;
  reported = false;
  send({ type: "ready" });
});

function count(rawSeq: string | string[] | undefined): void {
  const seq = Number(rawSeq);
  requests++;
  if (requests === 1) send({ type: "first", seq });
  const index = seq - firstSeq;
  if (!Number.isInteger(seq) || index < 0 || index >= seen.length) {
    badSeq++;
    return;
  }
  // In order: each request carries the seq after the previous one's (or, for a retry, the same).
  if (seq !== next && seq !== next - 1) outOfOrder++;
  next = seq + 1;
  if (seen[index]) repeated++;
  else {
    seen[index] = 1;
    distinct++;
  }
  if (!reported && distinct === seen.length) {
    reported = true;
    send({ type: "done", requests, distinct, outOfOrder, repeated, badSeq });
  }
}

const server = createServer((req, res) => {
  count(req.headers["x-tailhook-seq"]);
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
    res.end("ok");
  });
});

server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stderr.write(`forward-target: listening on http://127.0.0.1:${port}\n`);
});

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
process.once("disconnect", () => process.exit(0));
