/*
 * Worker thread for the `ds` phase's "with a reader" run: one SSE follower
 * (bench/ds-sse.ts) on the stream being loaded, in its own thread so that parsing
 * its events does not take event-loop time from autocannon in the main thread.
 * Posts "ready" at its first upToDate control event, its state when asked ("report"),
 * and its final state on "stop"; "error" if reading failed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { followSse, type SseState } from "./ds-sse.js";

export interface SseWorkerData {
  url: string;
  offset: string;
}

export type SseWorkerReply = { type: "ready" } | { type: "state"; state: SseState; final: boolean } | { type: "error"; message: string };

const port = parentPort!;
const { url, offset } = workerData as SseWorkerData;
const follower = followSse({ url, offset });
const post = (reply: SseWorkerReply) => port.postMessage(reply);

void follower.ready.then(() => post({ type: "ready" }));
follower.finished.catch((error: unknown) => post({ type: "error", message: error instanceof Error ? error.message : String(error) }));

port.on("message", (request: "report" | "stop") => {
  if (request === "report") {
    post({ type: "state", state: { ...follower.state }, final: false });
  } else {
    follower.stop();
    post({ type: "state", state: { ...follower.state }, final: true });
    port.close();
  }
});
