/*
 * Which SQLite errors are the store's trouble (answer 503: retry) rather than a bug of
 * ours (500). Busy or locked files, I/O errors, a full or read-only disk, a file that
 * cannot be opened, is corrupt or is no database say the disk or the file cannot serve
 * now. SQLITE_ERROR (a bad statement), SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE
 * and SQLITE_MISUSE say our code and the schema disagree, which retrying does not fix.
 */
import Database from "better-sqlite3";

const TROUBLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|READONLY|CORRUPT|NOTADB|PROTOCOL|INTERRUPT|NOLFS|PERM)(_|$)/;

export function isSqliteTrouble(error: unknown): boolean {
  return error instanceof Database.SqliteError && TROUBLE.test(error.code);
}
