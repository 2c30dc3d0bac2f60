/*
 * Keeping the SQLite data folder honest: one server per folder (a kernel-held lock),
 * never a fresh, empty database in a folder that held one (a marker written at
 * initialisation), and a way to notice that the database file the writer commits to
 * is no longer the one the folder names (deleted, folder removed, or replaced).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

export const DATABASE_FILE = "tailhook.db";
export const MARKER_FILE = "tailhook-folder.json";
const LOCK_FILE = "tailhook.lock";
const PID_FILE = "tailhook.pid";

/** A start refused because of the folder's state; the message says what to do. */
export class DataFolderError extends Error {}

export interface FolderLogger {
  warn(object: object, message: string): void;
}

export interface DataFolder {
  databaseFile: string;
  /** True when this start creates the database (no marker yet, no tailhook.db). */
  initialising: boolean;
  /** Writes the marker once the database exists (idempotent). */
  markInitialised(): void;
  /** Releases the folder lock. */
  release(): void;
}

/** fsync of a file or a folder (a folder's fsync puts its new entries on disk). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/*
 * The lock is SQLite's own file lock (POSIX fcntl) on a separate file: a connection
 * in exclusive locking mode that has written once keeps its exclusive lock until it
 * closes, and the kernel drops it when the process dies, SIGKILL included, so a crash
 * leaves no stale lock. busy_timeout 0 makes a second process fail at once. (fcntl
 * locks belong to the process and any close of the file drops them, which is why the
 * file is touched only through this one connection; the pid goes in a separate file.)
 */
function lockFolder(dataDir: string): Database.Database {
  const lock = new Database(join(dataDir, LOCK_FILE));
  try {
    lock.pragma("busy_timeout = 0");
    lock.pragma("locking_mode = EXCLUSIVE");
    lock.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)");
    lock.exec("BEGIN EXCLUSIVE");
    lock.prepare("DELETE FROM holder").run();
    lock.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid);
    lock.exec("COMMIT");
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code !== "SQLITE_BUSY") throw error;
    let holder = "";
    try {
      const pid = Number(readFileSync(join(dataDir, PID_FILE), "utf8").trim());
      if (Number.isInteger(pid) && pid > 0) holder = ` (pid ${pid})`;
    } catch {
      // No pid file: the message just names the folder.
    }
    throw new DataFolderError(
      `the data folder ${dataDir} is in use by another tailhook process${holder}; only one server may run on a folder`,
    );
  }
  writeFileSync(join(dataDir, PID_FILE), `${process.pid}\n`);
  return lock;
}

/** True when the file holds a tailhook schema (a database that was initialised). */
function hasSchema(file: string): boolean {
  const db = new Database(file, { fileMustExist: true });
  try {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
  } finally {
    db.close();
  }
}

/**
 * Locks the folder (creating it if it does not exist) and checks it against its
 * marker. Throws DataFolderError when another process holds it, or when the marker
 * says a database was here and tailhook.db is missing or empty.
 */
export function openDataFolder(dataDir: string, logger?: FolderLogger): DataFolder {
  const existed = existsSync(dataDir);
  if (!existed) {
    // Indistinguishable from a first run: a folder removed as a whole is recreated empty.
    logger?.warn({ dataDir }, `initialising a NEW data folder at ${dataDir} (it did not exist)`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockFolder(dataDir);
  const release = () => lock.close();
  const databaseFile = join(dataDir, DATABASE_FILE);
  const marker = join(dataDir, MARKER_FILE);
  try {
    const size = existsSync(databaseFile) ? statSync(databaseFile).size : undefined;
    const marked = existsSync(marker);
    if (marked && (size === undefined || size === 0 || !hasSchema(databaseFile))) {
      const state = size === undefined ? "tailhook.db is missing" : "tailhook.db is empty (no tailhook schema)";
      throw new DataFolderError(
        `refusing to start: the data folder ${dataDir} was initialised before (${MARKER_FILE} is there) but ${state}; ` +
          "its events would be lost under a fresh database. Restore tailhook.db (with its -wal file) from a backup, " +
          `or, to start over on purpose, remove ${marker}`,
      );
    }
    const initialising = size === undefined || size === 0;
    if (initialising && existed && !marked) logger?.warn({ dataDir }, `initialising a NEW data folder at ${dataDir}`);
    return {
      databaseFile,
      initialising,
      markInitialised() {
        if (existsSync(marker)) return;
        const note = { createdAt: new Date().toISOString(), note: "tailhook refuses to start here without tailhook.db" };
        writeFileSync(marker, `${JSON.stringify(note)}\n`, { flag: "wx" });
        fsyncPath(marker);
        // Also makes tailhook.db's own directory entry durable before we rely on the marker.
        fsyncPath(dataDir);
      },
      release,
    };
  } catch (error) {
    release();
    throw error;
  }
}

/** Which file a path names right now (device and inode), or undefined when nothing is there. */
export interface FileIdentity {
  dev: number;
  ino: number;
  /** Bytes at the time of the check (the writer bounds the WAL by it). */
  size: number;
}

export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    const stats = statSync(path);
    return { dev: stats.dev, ino: stats.ino, size: stats.size };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw error;
  }
}

/*
 * Remembers which files the writer opened (the database and its WAL) and tells
 * whether the folder still names them. SQLite keeps writing to an unlinked file
 * without complaint, so after an `rm -rf` of the folder every commit would "succeed"
 * into a file nobody can open again.
 */
export class DatabaseIdentity {
  private readonly opened: Array<{ path: string; identity: FileIdentity }>;
  private readonly walFile: string;
  /** The WAL's size as the last check saw it; undefined when that check did not stat it. */
  walBytes: number | undefined;

  constructor(databaseFile: string) {
    this.walFile = `${databaseFile}-wal`;
    this.opened = [databaseFile, `${databaseFile}-wal`].flatMap((path) => {
      const identity = fileIdentity(path);
      return identity ? [{ path, identity }] : [];
    });
  }

  /** Why the folder no longer names the opened files, or undefined while it does. */
  lostReason(): string | undefined {
    this.walBytes = undefined;
    for (const { path, identity } of this.opened) {
      let now: FileIdentity | undefined;
      try {
        now = fileIdentity(path);
      } catch {
        continue; // An unreadable stat (EIO, EACCES) is not proof the file is gone.
      }
      if (!now) return `${path} no longer exists (deleted, or its folder was removed)`;
      if (now.dev !== identity.dev || now.ino !== identity.ino) return `${path} was replaced by another file`;
      if (path === this.walFile) this.walBytes = now.size;
    }
    return undefined;
  }
}
