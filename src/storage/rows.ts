/* Shapes shared by the backends: an inbox row as selected, and the migration list format. */
import type { Inbox, InboxSettings, StoredInbox } from "../core/types.js";

export interface InboxRow {
  id: string;
  name: string | null;
  streamId: number;
  tokenHash: Buffer;
  settings: string;
  createdAt: number;
}

export function toInbox(row: InboxRow): StoredInbox {
  return { ...row, settings: JSON.parse(row.settings) as InboxSettings };
}

export function withoutToken({ tokenHash: _tokenHash, ...inbox }: StoredInbox): Inbox {
  return inbox;
}

/** One numbered schema change. Never edit a released one: add the next number. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}
