/*
 * Copies the WAL back into the database file on its own thread and connection, so
 * that neither the writer (and with it every ingest reply) nor the readers wait for
 * that copying. PASSIVE never blocks them. Under steady writes it never quite catches
 * up, though, and SQLite rewinds the WAL only after a complete checkpoint; the writer
 * thread finishes the last few frames itself from time to time (writer-thread.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { fileMustExist: true });
db.pragma("busy_timeout = 1000");
db.pragma("synchronous = FULL");

const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or transient I/O trouble: the next tick tries again; the WAL stays correct.
  }
}, intervalMs);

parentPort!.on("message", (message: { type: string }) => {
  if (message.type !== "close") return;
  clearInterval(timer);
  try {
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
    parentPort!.postMessage({ type: "closed" });
    parentPort!.close();
  }
});
