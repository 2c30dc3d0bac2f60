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
];
