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
  {
    version: 3,
    name: "general streams: lifecycle, forks, producers; durable records",
    // A deleted stream's name must become free again: a unique index over live streams
    // replaces the UNIQUE constraint.
    sql: `
      ALTER TABLE streams DROP CONSTRAINT streams_name_key;
      CREATE UNIQUE INDEX streams_live_name ON streams (name) WHERE deleted_at IS NULL;
      ALTER TABLE streams
        ADD COLUMN soft_deleted    BOOLEAN NOT NULL DEFAULT false,
        ADD COLUMN ttl_seconds     BIGINT,
        ADD COLUMN expires_at      BIGINT,
        ADD COLUMN touched_at      BIGINT,
        ADD COLUMN forked_from     BIGINT,
        ADD COLUMN fork_seq        BIGINT,
        ADD COLUMN fork_request    TEXT,
        ADD COLUMN last_stream_seq TEXT,
        ADD COLUMN closed_by       TEXT;
      CREATE INDEX streams_forked_from ON streams (forked_from) WHERE forked_from IS NOT NULL;
      CREATE TABLE producers (
        stream_id   BIGINT NOT NULL,
        producer_id TEXT   NOT NULL,
        epoch       BIGINT NOT NULL,
        last_seq    BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (stream_id, producer_id)
      );
      CREATE TABLE records (
        kind  TEXT NOT NULL,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, key)
      );
    `,
  },
  {
    version: 4,
    name: "dedupe: delivery ids per inbox stream",
    // The primary key is what keeps two processes from both appending one delivery id.
    sql: `
      CREATE TABLE dedupe (
        stream_id  BIGINT NOT NULL,
        key        TEXT   NOT NULL,
        seq        BIGINT NOT NULL,
        event_id   TEXT   NOT NULL,
        first_at   BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        deliveries BIGINT NOT NULL,
        PRIMARY KEY (stream_id, key)
      );
      CREATE INDEX dedupe_expires_at ON dedupe (expires_at);
    `,
  },
  {
    version: 5,
    name: "state streams: the flag and the key index",
    // docs/key-frames.md. Byte-order collation ("C"), so snapshots list keys in the
    // same order as on SQLite, whatever the database's locale.
    sql: `
      ALTER TABLE streams ADD COLUMN state_protocol TEXT;
      CREATE TABLE state_keys (
        stream_id BIGINT  NOT NULL,
        type      TEXT    COLLATE "C" NOT NULL,
        key       TEXT    COLLATE "C" NOT NULL,
        seq       BIGINT  NOT NULL,
        deleted   BOOLEAN NOT NULL,
        PRIMARY KEY (stream_id, type, key)
      );
      CREATE TABLE state_history (
        stream_id BIGINT  NOT NULL,
        type      TEXT    COLLATE "C" NOT NULL,
        key       TEXT    COLLATE "C" NOT NULL,
        seq       BIGINT  NOT NULL,
        deleted   BOOLEAN NOT NULL,
        PRIMARY KEY (stream_id, type, key, seq)
      );
      CREATE TABLE state_resets (
        stream_id BIGINT NOT NULL,
        seq       BIGINT NOT NULL,
        PRIMARY KEY (stream_id, seq)
      );
    `,
  },
  {
    version: 7,
    name: "inbox key frames: the definition an inbox stream's key index is built with",
    // docs/key-frames.md, "Inbox key frames": NULL without one; the version counts changes (cursors name it).
    sql: `
      ALTER TABLE streams ADD COLUMN key_frame TEXT;
      ALTER TABLE streams ADD COLUMN key_frame_version INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 8,
    name: "compaction: the key-frame horizon and the policy",
    // (6 is unused: it was planned and dropped.) docs/key-frames.md, "Compaction".
    sql: `
      ALTER TABLE streams ADD COLUMN horizon_seq BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE streams ADD COLUMN compaction TEXT;
      CREATE INDEX streams_compacted ON streams (id) WHERE compaction IS NOT NULL;
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
