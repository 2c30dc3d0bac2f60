/*
 * Numbered schema migrations for PostgreSQL, the same model as the SQLite ones.
 * Never edit a released migration: add the next number.
 */
import type postgres from "postgres";
import type { Migration } from "../rows.js";

export const migrations: Migration[] = [
  {
    version: 1,
    name: "streams, messages and inboxes",
    sql: `
      CREATE TABLE streams (
        id           BIGSERIAL PRIMARY KEY,
        name         TEXT    NOT NULL UNIQUE,
        content_type TEXT    NOT NULL,
        tail_seq     BIGINT  NOT NULL DEFAULT 0,
        first_seq    BIGINT  NOT NULL DEFAULT 1,
        closed       BOOLEAN NOT NULL DEFAULT false,
        created_at   BIGINT  NOT NULL,
        deleted_at   BIGINT
      );
      CREATE TABLE messages (
        stream_id  BIGINT NOT NULL,
        seq        BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        data       BYTEA  NOT NULL,
        meta       TEXT,
        PRIMARY KEY (stream_id, seq)
      );
      CREATE TABLE inboxes (
        id         TEXT   PRIMARY KEY,
        name       TEXT,
        stream_id  BIGINT NOT NULL REFERENCES streams (id),
        token_hash BYTEA  NOT NULL,
        settings   TEXT   NOT NULL,
        created_at BIGINT NOT NULL,
        deleted_at BIGINT
      );
    `,
  },
  {
    version: 2,
    name: "consumers",
    sql: `
      CREATE TABLE consumers (
        stream_id     BIGINT NOT NULL,
        name          TEXT   NOT NULL,
        committed_seq BIGINT NOT NULL,
        created_at    BIGINT NOT NULL,
        last_ack_at   BIGINT,
        last_seen_at  BIGINT,
        PRIMARY KEY (stream_id, name)
      );
    `,
  },
];

/** Applies what is missing; an advisory lock keeps concurrent `serve` processes from racing. */
export async function migrate(sql: postgres.Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(7442291)`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`;
    const applied = new Set((await tx<Array<{ version: number }>>`SELECT version FROM schema_migrations`).map((row) => row.version));
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await tx.unsafe(migration.sql);
      await tx`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${migration.version}, ${migration.name}, ${Date.now()})`;
    }
  });
}
