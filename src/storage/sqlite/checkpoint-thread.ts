/*
 * Copies the WAL back into the database file on its own thread and connection, so
 * that neither the writer (and with it every ingest reply) nor the readers wait for
 * most of a checkpoint. PASSIVE never blocks them, but under steady writes it never
 * catches up completely, and SQLite only rewinds the WAL after a complete checkpoint:
 * the file would grow without end and every fsync would extend it. So once the WAL
 * passes a size, a RESTART checkpoint follows the PASSIVE one; it holds writers back
 * only for the few frames written since, and the WAL then starts again from its
 * beginning (overwriting already allocated space, which fsyncs faster).
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { file, intervalMs, restartFrames } = workerData as { file: string; intervalMs: number; restartFrames: number };
const db = new Database(file, { fileMustExist: true });
db.pragma("busy_timeout = 1000");
db.pragma("synchronous = FULL");

interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

function checkpoint(mode: "PASSIVE" | "RESTART" | "TRUNCATE"): CheckpointResult | undefined {
  return (db.pragma(`wal_checkpoint(${mode})`) as CheckpointResult[])[0];
}

const timer = setInterval(() => {
  try {
    const passive = checkpoint("PASSIVE");
    if (passive && passive.log > restartFrames) checkpoint("RESTART");
  } catch {
    // Busy or transient I/O trouble: the next tick tries again; the WAL stays correct.
  }
}, intervalMs);

parentPort!.on("message", (message: { type: string }) => {
  if (message.type !== "close") return;
  clearInterval(timer);
  try {
    checkpoint("TRUNCATE");
  } finally {
    db.close();
    parentPort!.postMessage({ type: "closed" });
    parentPort!.close();
  }
});
