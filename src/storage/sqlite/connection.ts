/*
 * Opening the database file the same way everywhere: WAL so readers never block the
 * writer, synchronous=FULL so a commit is on disk before it returns, and automatic
 * checkpoints off because a checkpoint thread does them away from the write path.
 */
import Database from "better-sqlite3";
import { migrations } from "./migrations.js";

export type Connection = Database.Database;

export const BUSY_TIMEOUT_MS = 5000;

export function openWriterConnection(file: string, mustExist = false): Connection {
  const db = new Database(file, { fileMustExist: mustExist });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("wal_autocheckpoint = 0");
  // After a checkpoint rewinds the WAL, trim the file if a burst made it larger than this.
  db.pragma("journal_size_limit = 67108864");
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma("foreign_keys = ON");
  return db;
}

export function openReaderConnection(file: string): Connection {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma("busy_timeout = 5000");
  return db;
}

export function migrate(db: Connection): void {
  // Off while tables are rebuilt (SQLite's recommended procedure); a pragma, so outside transactions.
  db.pragma("foreign_keys = OFF");
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  const applied = new Set(
    (db.prepare("SELECT version FROM schema_migrations").all() as Array<{ version: number }>).map((row) => row.version),
  );
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        migration.version,
        migration.name,
        Date.now(),
      );
    })();
  }
  db.pragma("foreign_keys = ON");
}
