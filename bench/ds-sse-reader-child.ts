/*
 * Child process for the `ds` phase's "with a reader" run: one SSE follower
 * (bench/ds-sse.ts) on the stream being loaded, in a process of its own so that
 * parsing its events takes no CPU time or event-loop time from autocannon in the bench
 * process. Its stream is argv[2] (JSON). Sends "ready" over IPC at its first upToDate
 * control event, its state when asked ("report"), and its final state on "stop";
 * "error" if reading failed.
 */
import { followSse, type SseState } from "./ds-sse.js";

export interface SseReaderArgs {
  url: string;
  offset: string;
}

export type SseReaderReply = { type: "ready" } | { type: "state"; state: SseState; final: boolean } | { type: "error"; message: string };

const { url, offset } = JSON.parse(process.argv[2]!) as SseReaderArgs;
const follower = followSse({ url, offset });
const post = (reply: SseReaderReply, then?: () => void) => (then ? process.send!(reply, then) : process.send!(reply));

void follower.ready.then(() => post({ type: "ready" }));
follower.finished.catch((error: unknown) => post({ type: "error", message: error instanceof Error ? error.message : String(error) }));

process.on("message", (request: "report" | "stop") => {
  if (request === "report") {
    post({ type: "state", state: { ...follower.state }, final: false });
  } else {
    follower.stop();
    post({ type: "state", state: { ...follower.state }, final: true }, () => process.disconnect());
  }
});
