/*
 * The only writer of the SQLite file. It runs in its own thread so that the fsync of
 * each commit overlaps with request handling on the main thread instead of blocking
 * it. Each batch is one transaction (group commit); results go back only after the
 * commit returned, i.e. after the WAL was fsynced.
 */
import { inboxStreamName } from "../../core/stream-names.js";
import { statfsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { encodeEventMetaWith, withVerdictJson } from "../../core/capture.js";
import { checkAppend, reportVerdict, type AppendCheck } from "../append-verification.js";
import { verifySettingsOf } from "./verify-settings.js";
import { ageCutoff, deletedTarget, planHeadDrops, retainedTarget, retentionOf, type HeadTarget } from "../../core/retention.js";
import { BUSY_TIMEOUT_MS, migrate, openWriterConnection } from "./connection.js";
import { prepareConsumerWrites } from "./consumer-writes.js";
import { DatabaseIdentity } from "./data-folder.js";
import { prepareStreamWrites } from "./stream-writes.js";
import { prepareInboxKeyWrites } from "./inbox-key-writes.js";
import { keyFrameText } from "../../core/inbox-keys.js";
import { inboxCompactionPolicy, policyText } from "../../core/compaction.js";
import { prepareCompactionWrites } from "./compaction-writes.js";
import { isSqliteTrouble } from "./store-trouble.js";
import { BodyFileWriter, bodiesFolder, isBodyFileTrouble, LARGE_BODY_BYTES } from "./body-files.js";
import { WAKE_ALL, type WriterStream } from "../../core/stream-rules.js";
import { type FromWriter, type ToWriter, type WriteOp, type WriteResult, type WriterOptions } from "./write-ops.js";

const port = parentPort!;
const options = workerData as WriterOptions;

function send(message: FromWriter): void {
  port.postMessage(message);
}

let db: ReturnType<typeof openWriterConnection>;
try {
  db = openWriterConnection(options.file, options.mustExist);
  migrate(db);
} catch (error) {
  send({ type: "open_failed", message: (error as Error).message });
  process.exit(1);
}

/** Which files we opened, to notice before each reply that the folder still names them. */
const identity = new DatabaseIdentity(options.file);
let folderLost: string | undefined;

const sql = {
  insertMessage: db.prepare("INSERT INTO messages (stream_id, seq, created_at, data, meta) VALUES (?, ?, ?, ?, ?)"),
  insertFiledMessage: db.prepare("INSERT INTO messages (stream_id, seq, created_at, data, meta, body_file) VALUES (?, ?, ?, X'', ?, 1)"),
  filedBody: db.prepare("SELECT 1 FROM messages WHERE stream_id = ? AND seq = ? AND body_file = 1"),
  bodyFilesGone: db.prepare("SELECT stream_id AS streamId, seq FROM body_files_gone LIMIT 1000"),
  forgetBodyFile: db.prepare("DELETE FROM body_files_gone WHERE stream_id = ? AND seq = ?"),
  insertStream: db.prepare("INSERT INTO streams (name, content_type, created_at) VALUES (?, ?, ?)"),
  insertInbox: db.prepare("INSERT INTO inboxes (id, name, stream_id, token_hash, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
  liveInbox: db.prepare("SELECT stream_id AS streamId, settings FROM inboxes WHERE id = ? AND deleted_at IS NULL"),
  setInboxName: db.prepare("UPDATE inboxes SET name = ? WHERE id = ?"),
  setInboxSettings: db.prepare("UPDATE inboxes SET settings = ? WHERE id = ?"),
  deleteInbox: db.prepare("UPDATE inboxes SET deleted_at = ? WHERE id = ?"),
  deleteStream: db.prepare("UPDATE streams SET deleted_at = ? WHERE id = ?"),
  retainedInboxes: db.prepare(
    "SELECT i.stream_id AS streamId, i.settings, s.first_seq AS firstSeq, s.tail_seq AS tailSeq FROM inboxes i JOIN streams s ON s.id = i.stream_id WHERE i.deleted_at IS NULL AND i.settings LIKE '%\"retention\"%'",
  ),
  firstYoungSeq: db.prepare("SELECT MIN(seq) AS seq FROM messages WHERE stream_id = ? AND created_at >= ?"),
  deleteHead: db.prepare("DELETE FROM messages WHERE stream_id = ? AND seq >= ? AND seq < ? "),
  setFirst: db.prepare("UPDATE streams SET first_seq = ? WHERE id = ?"),
  delivery: db.prepare("SELECT seq, event_id AS id, first_at AS firstAt FROM dedupe WHERE stream_id = ? AND key = ?"),
  countDelivery: db.prepare("UPDATE dedupe SET deliveries = deliveries + 1 WHERE stream_id = ? AND key = ?"),
  saveDelivery: db.prepare(
    `INSERT INTO dedupe (stream_id, key, seq, event_id, first_at, expires_at, deliveries) VALUES (?, ?, ?, ?, ?, ?, 1)
     ON CONFLICT (stream_id, key) DO UPDATE SET seq = excluded.seq, event_id = excluded.event_id, first_at = excluded.first_at,
       expires_at = excluded.expires_at, deliveries = 1`,
  ),
  pruneDeliveries: db.prepare("DELETE FROM dedupe WHERE rowid IN (SELECT rowid FROM dedupe WHERE expires_at <= ? LIMIT ?)"),
  deletedStreams: db.prepare(
    "SELECT id, first_seq AS firstSeq, tail_seq AS tailSeq FROM streams WHERE deleted_at IS NOT NULL AND first_seq <= tail_seq",
  ),
};

const consumers = prepareConsumerWrites(db);
/** The streams the running batch extended (id → new tail), reported after its commit. */
let batchExtended = new Map<number, number>();
const streams = prepareStreamWrites(db, () => batchExtended);
const inboxKeys = prepareInboxKeyWrites(db);
const compaction = prepareCompactionWrites(db, (streamId) => streams.forgetId(streamId));
const bodyFiles = new BodyFileWriter(bodiesFolder(options.file));
bodyFiles.removeOrphans((streamId, seq) => sql.filedBody.get(streamId, seq) !== undefined);

/** Appends never delete a message: a batch of appends alone needs no look at the queue of gone files. */
function mayDeleteMessages(ops: WriteOp[]): boolean {
  return ops.some((op) => op.kind !== "appendEvent" && op.kind !== "appendStream");
}

/** Removes the files of rows deleted by committed batches (queued by the body_files_gone trigger). */
const forgetBodyFiles = db.transaction((files: Array<{ streamId: number; seq: number }>) => {
  for (const { streamId, seq } of files) sql.forgetBodyFile.run(streamId, seq);
});
function removeGoneBodyFiles(): void {
  try {
    for (;;) {
      const gone = sql.bodyFilesGone.all() as Array<{ streamId: number; seq: number }>;
      if (gone.length === 0) return;
      bodyFiles.remove(gone);
      forgetBodyFiles(gone);
    }
  } catch {
    // A full or failing disk: the queue is durable, the next batch tries again.
  }
}
removeGoneBodyFiles();

/** Retention targets, each computed only when the plan asks for it (its age query included). */
function* pruneTargets(now: number): Generator<HeadTarget> {
  const inboxes = sql.retainedInboxes.all() as Array<{ streamId: number; settings: string; firstSeq: number; tailSeq: number }>;
  for (const inbox of inboxes) {
    const stream = { ...inbox, retention: retentionOf(inbox.settings) };
    const cutoff = ageCutoff(stream.retention, now);
    const young = cutoff === undefined ? undefined : (sql.firstYoungSeq.get(inbox.streamId, cutoff) as { seq: number | null }).seq;
    yield retainedTarget(stream, young);
  }
  for (const stream of sql.deletedStreams.all() as Array<{ id: number; firstSeq: number; tailSeq: number }>) yield deletedTarget(stream);
}

function prune(now: number, maxRows: number): number {
  const plan = planHeadDrops(pruneTargets(now), maxRows);
  let step = plan.next(0);
  while (!step.done) {
    const { streamId, fromSeq, stopSeq } = step.value;
    const removed = sql.deleteHead.run(streamId, fromSeq, stopSeq).changes;
    sql.setFirst.run(stopSeq, streamId);
    streams.forgetId(streamId);
    step = plan.next(removed);
  }
  let budget = step.value;
  if (budget > 0) budget -= sql.pruneDeliveries.run(now, budget).changes;
  return maxRows - budget;
}

type AppendEventOp = Extract<WriteOp, { kind: "appendEvent" }>;

function appendChecked(
  stream: WriterStream,
  request: AppendEventOp["request"],
  meta: string,
  dedupe: AppendEventOp["dedupe"],
): Extract<WriteResult, { status: "appended" | "duplicate" }> {
  // In this transaction, after every earlier op of the batch: a repeat in the same batch sees the first.
  if (dedupe) {
    const seen = sql.delivery.get(stream.id, dedupe.key) as { seq: number; id: string; firstAt: number } | undefined;
    if (seen && dedupe.now - seen.firstAt < dedupe.windowMs) {
      sql.countDelivery.run(stream.id, dedupe.key);
      return { status: "duplicate", seq: seen.seq, id: seen.id };
    }
  }
  const seq = stream.tailSeq + 1;
  if (request.body.byteLength >= LARGE_BODY_BYTES) {
    bodyFiles.write(stream.id, seq, request.body);
    sql.insertFiledMessage.run(stream.id, seq, request.receivedAt, meta);
  } else {
    sql.insertMessage.run(stream.id, seq, request.receivedAt, request.body, meta);
  }
  if (stream.keyFrame !== null) inboxKeys.indexEvent(stream.id, stream.keyFrame, seq, request);
  if (dedupe) sql.saveDelivery.run(stream.id, dedupe.key, seq, request.id, dedupe.now, dedupe.now + dedupe.windowMs);
  // The streams row is written once per batch (flush), however many events it took.
  streams.extendTail(stream, seq);
  return { status: "appended", seq };
}

/**
 * The signature checks of a batch's appends, made one after another before its
 * transaction: run back to back, the HMACs cost far less than between inserts.
 */
function checkSignatures(ops: WriteOp[]): Array<AppendCheck | undefined> {
  return ops.map((op) =>
    op.kind === "appendEvent" && op.verify !== undefined ? checkAppend(verifySettingsOf(op.verify), op.request) : undefined,
  );
}

function apply(op: WriteOp, check: AppendCheck | undefined, extended: Map<number, number>): WriteResult {
  switch (op.kind) {
    case "appendEvent": {
      const stream = streams.liveById(op.streamId);
      if (!stream) return { status: "not_found" };
      if (check === undefined)
        return appendChecked(stream, op.request, op.meta ?? encodeEventMetaWith(op.request, op.annotationsJson), op.dedupe);
      if (check.refused) return check.result;
      // The meta with the verdict is made here; the main thread gets it back to hand to live readers.
      const meta = encodeEventMetaWith(op.request, withVerdictJson(op.annotationsJson, check.verdict));
      const result = appendChecked(stream, op.request, meta, op.dedupe);
      return reportVerdict(result.status === "appended" ? { ...result, meta } : result, check.verdict);
    }
    case "createInbox": {
      const streamId = Number(sql.insertStream.run(inboxStreamName(op.inbox.id), "application/json", op.now).lastInsertRowid);
      sql.insertInbox.run(op.inbox.id, op.inbox.name, streamId, op.inbox.tokenHash, JSON.stringify(op.inbox.settings), op.now);
      inboxKeys.define(streamId, null, keyFrameText(op.inbox.settings.keyFrame));
      const policy = policyText(inboxCompactionPolicy(op.inbox.settings));
      if (policy !== null) compaction.setPolicy(streamId, policy);
      return { status: "created", streamId };
    }
    case "updateInbox": {
      const inbox = sql.liveInbox.get(op.id) as { streamId: number } | undefined;
      if (!inbox) return { status: "not_found" };
      if (op.changes.name !== undefined) sql.setInboxName.run(op.changes.name, op.id);
      if (op.changes.settings !== undefined) {
        sql.setInboxSettings.run(JSON.stringify(op.changes.settings), op.id);
        const stream = streams.liveById(inbox.streamId);
        const next = keyFrameText(op.changes.settings.keyFrame);
        // The cached row still holds the old definition: read it again on the next append.
        if (stream && inboxKeys.define(stream.id, stream.keyFrame, next)) streams.forgetId(stream.id);
        const policy = policyText(inboxCompactionPolicy(op.changes.settings));
        if (policy !== (stream?.compaction ? policyText(stream.compaction) : null)) compaction.setPolicy(inbox.streamId, policy);
      }
      return { status: "updated" };
    }
    case "deleteInbox": {
      const inbox = sql.liveInbox.get(op.id) as { streamId: number } | undefined;
      if (!inbox) return { status: "not_found" };
      streams.forgetId(inbox.streamId);
      sql.deleteInbox.run(op.now, op.id);
      sql.deleteStream.run(op.now, inbox.streamId);
      consumers.removeAll(inbox.streamId);
      // Wake the inbox's live readers now, so they end instead of waiting out a timeout.
      extended.set(inbox.streamId, WAKE_ALL);
      return { status: "deleted" };
    }
    case "prune":
      streams.expire(op.now);
      return { status: "pruned", rows: prune(op.now, op.maxRows) };
    case "compact": {
      const step = compaction.step(op.now, op.maxRows, op.round);
      return { status: "compacted", removed: step.removed, more: step.more };
    }
    case "setCompactionPolicy":
      return compaction.setPolicy(op.streamId, op.policy) ? { status: "updated" } : { status: "not_found" };
    case "ensureConsumer":
      return { status: "consumer", consumer: consumers.ensure(op.streamId, op.name, op.startSeq, op.now) };
    case "ackConsumer":
      return { status: "consumer", consumer: consumers.ack(op.streamId, op.name, op.seq, op.now) };
    case "deleteConsumer":
      return consumers.remove(op.streamId, op.name) ? { status: "deleted" } : { status: "not_found" };
    case "markConsumerSeen":
      consumers.markSeen(op.streamId, op.name, op.now);
      return { status: "updated" };
    case "createStream":
      return { status: "stream", result: streams.createStream(op.request, op.now) };
    case "appendStream":
      return { status: "stream", result: streams.appendStream(op.request, op.now) };
    case "deleteStream":
      return { status: "stream", result: streams.deleteStream(op.name, op.now) };
    case "touchStreams":
      streams.touch(op.streamIds, op.now);
      return { status: "updated" };
    case "putRecord":
      streams.putRecord(op.recordKind, op.key, op.value);
      return { status: "updated" };
  }
}

/*
 * The WAL, bounded in bytes. The checkpoint thread copies it into the database file
 * without blocking us, but while we keep writing its checkpoints never complete, and
 * SQLite only rewinds the WAL after a complete one: the file would grow (about 7 bytes
 * per byte of events) until the disk is full. So after a batch, when the -wal file
 * (a stat, cheap) has reached the limit, we checkpoint the few frames the thread has
 * not copied yet and truncate the file; no write can slip in meanwhile, so this one
 * completes. The limit is an eighth of the space the WAL could have (free space plus
 * its own size), between 1 and 64 MiB: large on a roomy disk, where each truncation
 * costs throughput, small on a nearly full one, where the WAL must not take the last
 * megabytes. After a failed commit (SQLITE_FULL, I/O errors) we try the same after
 * every batch until it works: an emptied WAL gives its space back.
 */
const WAL_MAX_BYTES = 64 * 1024 * 1024;
const WAL_MIN_BYTES = 1024 * 1024;
const WAL_SHARE_OF_SPACE = 1 / 8;
const SPACE_CHECK_MS = 250;
/** How long the truncating checkpoint waits for readers on an old snapshot, at most. */
const TRUNCATE_BUSY_MS = 20;
const walFile = `${options.file}-wal`;
let truncateWanted = false;
let walLimit = WAL_MIN_BYTES;
let spaceCheckedAt = 0;

/** The WAL's size: from the identity check just made after the commit, else one stat. */
function walBytes(): number {
  if (identity.walBytes !== undefined) return identity.walBytes;
  try {
    return statSync(walFile).size;
  } catch {
    return 0;
  }
}

function walLimitBytes(wal: number): number {
  const now = Date.now();
  if (now - spaceCheckedAt < SPACE_CHECK_MS) return walLimit;
  spaceCheckedAt = now;
  try {
    const space = statfsSync(dirname(options.file));
    const room = (space.bavail * space.bsize + wal) * WAL_SHARE_OF_SPACE;
    walLimit = Math.min(WAL_MAX_BYTES, Math.max(WAL_MIN_BYTES, room));
  } catch {
    walLimit = WAL_MIN_BYTES;
  }
  return walLimit;
}

/** After a busy or failed try, the next waits this long, so readers on old snapshots do not cost every batch 20 ms. */
const TRUNCATE_RETRY_MS = 100;
let nextTruncateAt = 0;

function boundWal(): void {
  if (!truncateWanted) {
    const wal = walBytes();
    if (wal < walLimitBytes(wal)) return;
  }
  if (Date.now() < nextTruncateAt) return;
  try {
    db.pragma(`busy_timeout = ${TRUNCATE_BUSY_MS}`);
    const [outcome] = db.pragma("wal_checkpoint(TRUNCATE)") as Array<{ busy: number }>;
    truncateWanted = outcome?.busy !== 0;
  } catch {
    // SQLITE_FULL, I/O trouble, or the checkpoint thread is mid-copy: retried after a later batch.
    truncateWanted = true;
  } finally {
    if (truncateWanted) nextTruncateAt = Date.now() + TRUNCATE_RETRY_MS;
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
}

/** Set once a batch's operations all ran: a failure after it is the COMMIT's, which may yet have reached the disk. */
let reachedCommit = false;

const runBatch = db.transaction((ops: WriteOp[], checks: Array<AppendCheck | undefined>, extended: Map<number, number>) => {
  const results = ops.map((op, index) => apply(op, checks[index], extended));
  streams.flush();
  // The body files' folder entries are on disk before the rows that name them commit.
  bodyFiles.sync();
  reachedCommit = true;
  return results;
});

port.on("message", (message: ToWriter) => {
  if (message.type === "close") {
    db.close();
    send({ type: "closed" });
    port.close();
    return;
  }
  if (folderLost) {
    send({ type: "failed", id: message.id, message: folderLost, permanent: "data_folder_lost" });
    return;
  }
  const extended = new Map<number, number>();
  batchExtended = extended;
  try {
    reachedCommit = false;
    const results = runBatch(message.ops, checkSignatures(message.ops), extended);
    bodyFiles.committed();
    // Committed, but into a file the folder may no longer name: then no one is told "stored".
    folderLost = identity.lostReason();
    if (folderLost) {
      send({ type: "failed", id: message.id, message: folderLost, permanent: "data_folder_lost" });
      return;
    }
    send({ type: "done", id: message.id, results, extended: [...extended] });
    if (mayDeleteMessages(message.ops)) removeGoneBodyFiles();
  } catch (error) {
    // Rolled back before the COMMIT: the batch's files are named by nothing. After a failed COMMIT they stay for the start-up sweep.
    bodyFiles.failed(!reachedCommit);
    identity.walBytes = undefined;
    // The transaction rolled back: cached stream rows may be ahead of the file.
    streams.forget();
    // Not SQLite's trouble (a TypeError in an operation): the batch rolled back all the same.
    send({ type: "failed", id: message.id, message: (error as Error).message, bug: !isSqliteTrouble(error) && !isBodyFileTrouble(error) });
    truncateWanted = true;
  }
  boundWal();
});

send({ type: "ready" });
