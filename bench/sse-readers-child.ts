/*
 * A process of SSE readers (the live and fanout phases): opens `connections` SSE
 * responses to one URL, in waves so the server's accept queue never overflows, and
 * tells its parent over IPC when every one has had its first control event. Each data
 * event's bodies carry { n, sentAt } from the sender child; per n this process keeps
 * the send time, the first and last receive times (CLOCK_MONOTONIC ms, see
 * stats.monotonicMs) and how many connections got it, and hands them over on
 * { type: "report" }. Reading apart from the sender and the bench process keeps its
 * event loop from being measured with the server.
 */
import { Agent, request } from "node:http";
import { onSseEvents, type SseEvent } from "./sse-events.js";

export interface ReadersChildArgs {
  url: string;
  connections: number;
}

/** [n, sentAt, first receive, last receive, connections that got it] */
export type ReceivedRow = [number, number, number, number, number];

export type ReadersChildMessage =
  { type: "ready" } | { type: "failed"; message: string } | { type: "report"; rows: ReceivedRow[]; duplicates: number; closed: number };

const WAVE = 250;
const args = JSON.parse(process.argv[2]!) as ReadersChildArgs;
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const received = new Map<number, ReceivedRow>();
let duplicates = 0;
let closed = 0;
let stopping = false;

const send = (message: ReadersChildMessage) => process.send!(message);

/** Records a data event's bodies; true for a control event (the server holds the reader's position). */
function onEvent({ type, data }: SseEvent, at: number, seen: Set<number>): boolean {
  if (type === "control") return true;
  if (type !== "data") return false;
  for (const envelope of JSON.parse(data) as Array<{ body: string }>) {
    const { n, sentAt } = JSON.parse(envelope.body) as { n: number; sentAt: number };
    if (seen.has(n)) {
      duplicates++;
      continue;
    }
    seen.add(n);
    const row = received.get(n);
    if (row === undefined) received.set(n, [n, sentAt, at, at, 1]);
    else {
      row[3] = at;
      row[4]++;
    }
  }
  return false;
}

function open(): Promise<void> {
  return new Promise((resolve, reject) => {
    const seen = new Set<number>();
    const req = request(args.url, { agent, headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`SSE read answered ${res.statusCode}`));
        return;
      }
      onSseEvents(res, (event, at) => {
        if (onEvent(event, at, seen)) resolve();
      });
      res.on("close", () => {
        if (!stopping) closed++;
      });
    });
    req.on("error", (error) => (stopping ? resolve() : reject(error)));
    req.end();
  });
}

process.on("message", (message: { type: string }) => {
  if (message.type === "report") send({ type: "report", rows: [...received.values()], duplicates, closed });
  else if (message.type === "stop") {
    stopping = true;
    agent.destroy();
    process.disconnect();
    process.exit(0);
  }
});

try {
  for (let opened = 0; opened < args.connections; opened += WAVE) {
    const wave = Math.min(WAVE, args.connections - opened);
    await Promise.all(Array.from({ length: wave }, open));
  }
  send({ type: "ready" });
} catch (error) {
  send({ type: "failed", message: error instanceof Error ? error.message : String(error) });
}
