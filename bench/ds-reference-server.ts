/*
 * Child process for the `ds` phase: the reference Durable Streams server,
 * `@durable-streams/server`'s DurableStreamTestServer, with its file-backed store
 * (`dataDir`: one append-only log file per stream plus LMDB for the metadata).
 *
 * Durability: the file store has no setting for it. Every append writes its frame to
 * the stream's log, waits for fdatasync of that file (concurrent callers share one
 * in-flight call), then commits the metadata to LMDB (lmdb-js defaults: synced
 * commits, overlappingSync), and only then answers 204. Appends to one stream are
 * serialized by a per-stream lock around that whole sequence.
 *
 * Usage: node ds-reference-server.js <dataDir>. Prints "listening on <url>" when up;
 * stops on SIGTERM. The store logs "store.append slow" at info level for every append
 * over 50 ms; those lines are counted, not printed, and the count is printed at exit.
 */
import { DurableStreamTestServer } from "@durable-streams/server";

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write("usage: ds-reference-server.js <dataDir>\n");
  process.exit(2);
}

let slowAppends = 0;
const info = console.info.bind(console);
console.info = (...args: unknown[]) => {
  if (typeof args[0] === "string" && args[0].includes("store.append slow")) slowAppends++;
  else if (typeof args[0] === "string" && args[0].includes("[FileBackedStreamStore]"))
    return; // recovery chatter at start-up
  else info(...args);
};

const server = new DurableStreamTestServer({ port: 0, host: "127.0.0.1", dataDir });
const url = await server.start();
process.stdout.write(`listening on ${url}\n`);

const stop = () => {
  void server.stop().finally(() => {
    if (slowAppends > 0) process.stderr.write(`${slowAppends} appends took over 50 ms inside the store (its "store.append slow" log)\n`);
    process.exit(0);
  });
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
