/*
 * Copies the WAL back into the database file on its own thread and connection, so
 * that neither the writer (and with it every ingest reply) nor the readers wait for
 * that copying. PASSIVE never blocks them. It runs on a timer and, sooner, whenever
 * the -wal file has grown by COPY_AFTER_BYTES, so that the writer's truncating
 * checkpoint (writer-thread.ts, at its WAL limit) finds little left to copy. Failures
 * (busy, disk full, I/O errors) are retried at the next tick and never end the thread;
 * the final checkpoint at close reports its failure instead of throwing: the WAL is
 * durable either way, and the next start copies it.
 */
import { statSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const POLL_MS = Math.min(100, intervalMs);
const COPY_AFTER_BYTES = 512 * 1024;

const db = new Database(file, { fileMustExist: true });
db.pragma("busy_timeout = 1000");
db.pragma("synchronous = FULL");

function walBytes(): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

let lastCopy = Date.now();
let copiedAtBytes = 0;

const timer = setInterval(() => {
  const bytes = walBytes();
  // A truncated WAL starts small again: measure growth from there.
  if (bytes < copiedAtBytes) copiedAtBytes = 0;
  if (bytes - copiedAtBytes < COPY_AFTER_BYTES && Date.now() - lastCopy < intervalMs) return;
  lastCopy = Date.now();
  copiedAtBytes = bytes;
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or transient trouble (disk full, I/O errors): the next tick tries again; the WAL stays correct.
  }
}, POLL_MS);

parentPort!.on("message", (message: { type: string }) => {
  if (message.type !== "close") return;
  clearInterval(timer);
  let error: string | undefined;
  try {
    db.pragma("wal_checkpoint(TRUNCATE)");
  } catch (caught) {
    error = (caught as Error).message;
  }
  try {
    db.close();
  } catch (caught) {
    error ??= (caught as Error).message;
  }
  parentPort!.postMessage({ type: "closed", ...(error === undefined ? {} : { error }) });
  parentPort!.close();
});
