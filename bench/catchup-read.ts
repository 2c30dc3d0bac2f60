/*
 * Catch-up read rate over SSE: one reader in this process opens
 * `<streamUrl>?offset=-1&live=sse` on an inbox holding a backlog and reads until the
 * first `control` event that says upToDate. It parses only what it needs: each
 * `data: {"seq":N,…` line is one event (its seq is checked to follow the previous
 * one), and the control events' JSON. The CPU time of the server and of this reader
 * over the read is recorded, to tell which end a slow read waited for.
 */
import { request } from "node:http";
import { performance } from "node:perf_hooks";
import type { Inbox, Tailhook } from "./children.js";
import { cpuSeconds } from "./rss.js";

export interface CatchUpResult {
  events: number;
  /** Events whose seq was not the previous one's + 1. */
  outOfOrder: number;
  lastSeq: number;
  bytes: number;
  /** ms from the request to the first byte of the body. */
  firstByteMs: number;
  seconds: number;
  eventsPerSecond: number;
  pages: number;
  /** CPU time per event, µs. */
  serverCpuUs: number;
  readerCpuUs: number;
}

/** An event line of a data event; SSE allows one optional space after "data:". */
const EVENT_LINE = /^data: ?\{"seq":(\d+),/;
const TIMEOUT_MS = 60_000;

export function readCatchUp(server: Tailhook, inbox: Inbox): Promise<CatchUpResult> {
  const url = `${inbox.streamUrl}?offset=-1&live=sse&token=${encodeURIComponent(inbox.token)}`;
  const controller = new AbortController();
  return new Promise<CatchUpResult>((resolve, reject) => {
    const serverCpuBefore = cpuSeconds(server.pid);
    const readerCpuBefore = process.cpuUsage();
    const start = performance.now();
    let firstByteMs = Number.NaN;
    let events = 0;
    let outOfOrder = 0;
    let lastSeq = 0;
    let bytes = 0;
    let pages = 0;
    let inControl = false;
    let done = false;
    const timer = setTimeout(() => fail(new Error(`the SSE catch-up read did not reach upToDate within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    function fail(error: Error) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      controller.abort();
      reject(error);
    }
    function finish() {
      done = true;
      clearTimeout(timer);
      const seconds = (performance.now() - start) / 1000;
      const serverCpuUs = ((cpuSeconds(server.pid) - serverCpuBefore) / events) * 1e6;
      const readerCpu = process.cpuUsage(readerCpuBefore);
      const readerCpuUs = (readerCpu.user + readerCpu.system) / events;
      controller.abort();
      resolve({
        events,
        outOfOrder,
        lastSeq,
        bytes,
        firstByteMs,
        seconds,
        eventsPerSecond: events / seconds,
        pages,
        serverCpuUs,
        readerCpuUs,
      });
    }
    function line(text: string) {
      const event = EVENT_LINE.exec(text);
      if (event) {
        const seq = Number(event[1]);
        if (seq !== lastSeq + 1) outOfOrder++;
        lastSeq = seq;
        events++;
      } else if (text === "event: control") {
        inControl = true;
      } else if (inControl && text.startsWith("data:")) {
        inControl = false;
        pages++;
        if ((JSON.parse(text.slice(5)) as { upToDate?: boolean }).upToDate) finish();
      }
    }
    const req = request(url, { signal: controller.signal, headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        fail(new Error(`SSE read answered ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      let partial = "";
      res.on("data", (chunk: string) => {
        if (done) return;
        if (bytes === 0) firstByteMs = performance.now() - start;
        bytes += chunk.length;
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        for (const text of lines) {
          line(text);
          if (done) return;
        }
      });
      res.on("error", (error) => fail(error));
      res.on("close", () => fail(new Error("the SSE stream ended before upToDate")));
    });
    req.on("error", (error) => fail(error));
    req.end();
  });
}
