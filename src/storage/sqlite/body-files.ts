/*
 * Large webhook bodies live in files of their own next to the database, not in its
 * rows: SQLite in WAL mode writes every byte twice (the WAL, then the checkpoint into
 * the database file), which held 1 MiB webhooks near a third of the disk's speed;
 * a body written once into its own file reaches about the disk's speed
 * (docs/benchmarks.md, "Large bodies").
 *
 * A body of at least LARGE_BODY_BYTES goes to <data>/bodies/<stream id>/<seq>, written
 * and fdatasynced, with its directory entry fsynced, before the transaction that inserts
 * its row (data empty, body_file = 1) commits: a committed row always finds its file. A
 * deleted row (retention, compaction, anything) is queued by a trigger in the same
 * transaction (body_files_gone), and its file is removed after that commit; a reader
 * that still sees the row in an older snapshot finds the file gone and reads again. A
 * file whose row never committed (a batch that failed before its COMMIT) is removed at
 * once, and any other (a failed COMMIT, a crash) when the writer starts, if no row
 * names it.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { fsyncPath } from "./data-folder.js";

/** Bodies from this size on are stored in files (a quarter MiB: small bodies batch into one WAL fsync far better). */
export const LARGE_BODY_BYTES = 256 * 1024;

export function bodiesFolder(databaseFile: string): string {
  return join(dirname(databaseFile), "bodies");
}

function bodyPath(folder: string, streamId: number, seq: number): string {
  return join(folder, String(streamId), String(seq));
}

/** Errors of the filesystem under the bodies (full, read-only, I/O): the store's trouble, answered 503, not a bug. */
const FILE_TROUBLE = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS", "EACCES", "EPERM", "ENOENT", "EMFILE", "ENFILE", "EBUSY"]);

export function isBodyFileTrouble(error: unknown): boolean {
  return FILE_TROUBLE.has((error as NodeJS.ErrnoException | undefined)?.code ?? "");
}

/** The writer thread's side: files written in the running transaction, and files to remove after commits. */
export class BodyFileWriter {
  private written: string[] = [];
  private readonly newFolders = new Set<string>();
  private readonly knownFolders = new Set<string>();

  constructor(private readonly folder: string) {}

  /** Writes the body durably (fdatasync); its folder entry is synced by sync(), before the commit. */
  write(streamId: number, seq: number, body: Uint8Array): void {
    const folder = join(this.folder, String(streamId));
    if (!this.knownFolders.has(folder)) this.ensureFolder(folder);
    const path = join(folder, String(seq));
    const fd = openSync(path, "w");
    this.written.push(path);
    this.newFolders.add(folder);
    try {
      for (let offset = 0; offset < body.byteLength;) offset += writeSync(fd, body, offset);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private ensureFolder(folder: string): void {
    const created = mkdirSync(folder, { recursive: true });
    // A new folder's own entry must be on disk too, up to the first folder that existed.
    if (created !== undefined) {
      for (let path = folder; path.length >= created.length; path = dirname(path)) this.newFolders.add(dirname(path));
    }
    this.knownFolders.add(folder);
  }

  /** Called last in the transaction: the new files' entries are on disk before the rows that name them commit. */
  sync(): void {
    for (const folder of this.newFolders) fsyncPath(folder);
    this.newFolders.clear();
  }

  /** The transaction committed: its files are referenced. */
  committed(): void {
    this.written = [];
  }

  /** The transaction failed; rolledBack: before its COMMIT, so its files are named by nothing. */
  failed(rolledBack: boolean): void {
    if (rolledBack) {
      for (const path of this.written) {
        try {
          removeQuietly(path);
        } catch {
          // Left for the start-up sweep.
        }
      }
    }
    this.written = [];
    this.newFolders.clear();
    // The next write makes sure its folder exists again (a failure may have been a folder removed under us).
    this.knownFolders.clear();
  }

  /** Removes the files of committed deletions. */
  remove(files: ReadonlyArray<{ streamId: number; seq: number }>): void {
    for (const { streamId, seq } of files) removeQuietly(bodyPath(this.folder, streamId, seq));
  }

  /**
   * At start: removes the files no committed row names (written for a batch that then
   * failed, or before a crash). `referenced` answers for one stream's seqs.
   */
  removeOrphans(referenced: (streamId: number, seq: number) => boolean): number {
    let removed = 0;
    for (const streamFolder of listQuietly(this.folder)) {
      const streamId = Number(streamFolder);
      for (const name of listQuietly(join(this.folder, streamFolder))) {
        const seq = Number(name);
        if (Number.isSafeInteger(streamId) && Number.isSafeInteger(seq) && referenced(streamId, seq)) continue;
        removeQuietly(join(this.folder, streamFolder, name));
        removed++;
      }
    }
    return removed;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

function listQuietly(path: string): string[] {
  try {
    return readdirSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** A row as read, before its body is filled in from its file. */
export interface RowWithBodyFile {
  data: Buffer;
  bodyFile?: number;
}

/** Thrown when a row's file is gone: the row was deleted after the read's snapshot began; read again. */
class BodyFileGone extends Error {}

/** Runs a read, and once more if a body file it needed was removed meanwhile: the second read no longer sees that row. */
export function againIfBodyGone<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof BodyFileGone)) throw error;
    return read();
  }
}

/** The reader's side: fills in the bodies stored in files; the row's bodyFile flag is dropped. */
export function fillBodies<Row extends RowWithBodyFile & { seq: number }>(folder: string, streamId: number, rows: Row[]): Row[] {
  for (const row of rows) {
    if (row.bodyFile === 1) row.data = readBodyFile(folder, streamId, row.seq);
    delete row.bodyFile;
  }
  return rows;
}

function readBodyFile(folder: string, streamId: number, seq: number): Buffer {
  try {
    return readFileSync(bodyPath(folder, streamId, seq));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new BodyFileGone(`body ${streamId}/${seq} was removed`);
    throw error;
  }
}
