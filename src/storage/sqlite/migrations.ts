/*
 * Numbered schema migrations, applied in order inside one transaction each. Never
 * edit a released migration: add the next number.
 */
import type { Migration } from "../rows.js";

export const migrations: Migration[] = [
  {
    version: 1,
    name: "streams, messages and inboxes",
    sql: `
      CREATE TABLE streams (
        id           INTEGER PRIMARY KEY,
        name         TEXT    NOT NULL UNIQUE,
        content_type TEXT    NOT NULL,
        tail_seq     INTEGER NOT NULL DEFAULT 0,
        first_seq    INTEGER NOT NULL DEFAULT 1,
        closed       INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        deleted_at   INTEGER
      );
      CREATE TABLE messages (
        stream_id  INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        data       BLOB    NOT NULL,
        meta       TEXT,
        PRIMARY KEY (stream_id, seq)
      );
      CREATE TABLE inboxes (
        id         TEXT    PRIMARY KEY,
        name       TEXT,
        stream_id  INTEGER NOT NULL REFERENCES streams (id),
        token_hash BLOB    NOT NULL,
        settings   TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER
      );
    `,
  },
  {
    version: 2,
    name: "consumers",
    sql: `
      CREATE TABLE consumers (
        stream_id     INTEGER NOT NULL,
        name          TEXT    NOT NULL,
        committed_seq INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        last_ack_at   INTEGER,
        last_seen_at  INTEGER,
        PRIMARY KEY (stream_id, name)
      );
    `,
  },
  {
    version: 3,
    name: "general streams: lifecycle, forks, producers; durable records",
    // Rebuilt rather than altered: a deleted stream's name must become free again, so
    // the UNIQUE constraint on name turns into a unique index over live streams.
    sql: `
      CREATE TABLE streams_v3 (
        id              INTEGER PRIMARY KEY,
        name            TEXT    NOT NULL,
        content_type    TEXT    NOT NULL,
        tail_seq        INTEGER NOT NULL DEFAULT 0,
        first_seq       INTEGER NOT NULL DEFAULT 1,
        closed          INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        deleted_at      INTEGER,
        soft_deleted    INTEGER NOT NULL DEFAULT 0,
        ttl_seconds     INTEGER,
        expires_at      INTEGER,
        touched_at      INTEGER,
        forked_from     INTEGER,
        fork_seq        INTEGER,
        fork_request    TEXT,
        last_stream_seq TEXT,
        closed_by       TEXT
      );
      INSERT INTO streams_v3 (id, name, content_type, tail_seq, first_seq, closed, created_at, deleted_at)
        SELECT id, name, content_type, tail_seq, first_seq, closed, created_at, deleted_at FROM streams;
      DROP TABLE streams;
      ALTER TABLE streams_v3 RENAME TO streams;
      CREATE UNIQUE INDEX streams_live_name ON streams (name) WHERE deleted_at IS NULL;
      CREATE INDEX streams_forked_from ON streams (forked_from) WHERE forked_from IS NOT NULL;
      CREATE TABLE producers (
        stream_id   INTEGER NOT NULL,
        producer_id TEXT    NOT NULL,
        epoch       INTEGER NOT NULL,
        last_seq    INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
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
    // One row per delivery id seen within its window; expires_at drives the prune.
    sql: `
      CREATE TABLE dedupe (
        stream_id  INTEGER NOT NULL,
        key        TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        event_id   TEXT    NOT NULL,
        first_at   INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        deliveries INTEGER NOT NULL,
        PRIMARY KEY (stream_id, key)
      );
      CREATE INDEX dedupe_expires_at ON dedupe (expires_at);
    `,
  },
  {
    version: 5,
    name: "state streams: the flag and the key index",
    // docs/key-frames.md: per (type, key) the latest change (a delete is a tombstone),
    // every superseded change (for snapshots as of an earlier seq), and resets.
    sql: `
      ALTER TABLE streams ADD COLUMN state_protocol TEXT;
      CREATE TABLE state_keys (
        stream_id INTEGER NOT NULL,
        type      TEXT    NOT NULL,
        key       TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        deleted   INTEGER NOT NULL,
        PRIMARY KEY (stream_id, type, key)
      ) WITHOUT ROWID;
      CREATE TABLE state_history (
        stream_id INTEGER NOT NULL,
        type      TEXT    NOT NULL,
        key       TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        deleted   INTEGER NOT NULL,
        PRIMARY KEY (stream_id, type, key, seq)
      ) WITHOUT ROWID;
      CREATE TABLE state_resets (
        stream_id INTEGER NOT NULL,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (stream_id, seq)
      ) WITHOUT ROWID;
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
      ALTER TABLE streams ADD COLUMN horizon_seq INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE streams ADD COLUMN compaction TEXT;
      CREATE INDEX streams_compacted ON streams (id) WHERE compaction IS NOT NULL;
    `,
  },
  {
    version: 9,
    name: "large bodies in files of their own",
    // body-files.ts: body_file = 1 means the body is in bodies/<stream_id>/<seq> (data is empty);
    // a deleted row's file is queued in the same transaction and removed after its commit.
    sql: `
      ALTER TABLE messages ADD COLUMN body_file INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE body_files_gone (
        stream_id INTEGER NOT NULL,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (stream_id, seq)
      ) WITHOUT ROWID;
      CREATE TRIGGER messages_body_file_gone AFTER DELETE ON messages WHEN OLD.body_file = 1
      BEGIN
        INSERT OR IGNORE INTO body_files_gone (stream_id, seq) VALUES (OLD.stream_id, OLD.seq);
      END;
    `,
  },
];
