/*
 * Inboxes of the PostgreSQL store. Other processes may change an inbox, so the cache
 * keeps one for a second at most (bounded, least recently used first out).
 */
import type postgres from "postgres";
import { LRUCache } from "lru-cache";
import { inboxStreamName } from "../../core/stream-names.js";
import type { Inbox, StoredInbox } from "../../core/types.js";
import type { InboxChanges, NewInbox } from "../store.js";
import { toInbox, withoutToken, type InboxRow } from "../rows.js";
import type { TrackQuery } from "./pg-reads.js";
import { keyFrameText } from "../../core/inbox-keys.js";
import { defineKeyFrame } from "./pg-inbox-keys.js";
import { inboxCompactionPolicy, policyText } from "../../core/compaction.js";

const INBOX_CACHE_MS = 1000;
const INBOX_CACHE_SIZE = 10_000;

export class PgInboxes {
  private readonly inboxCache = new LRUCache<string, StoredInbox>({ max: INBOX_CACHE_SIZE, ttl: INBOX_CACHE_MS });

  constructor(
    private readonly sql: postgres.Sql,
    private readonly track: TrackQuery,
  ) {}

  /** Drops the cached copy (the inbox is being deleted). */
  forget(id: string): void {
    this.inboxCache.delete(id);
  }

  async createInbox(inbox: NewInbox): Promise<Inbox> {
    const now = Date.now();
    const streamId = await this.track(() =>
      this.sql.begin(async (tx) => {
        const [stream] = await tx<Array<{ id: number }>>`
          INSERT INTO streams (name, content_type, created_at) VALUES (${inboxStreamName(inbox.id)}, 'application/json', ${now})
          RETURNING id`;
        await tx`
          INSERT INTO inboxes (id, name, stream_id, token_hash, settings, created_at)
          VALUES (${inbox.id}, ${inbox.name}, ${stream!.id}, ${inbox.tokenHash}, ${JSON.stringify(inbox.settings)}, ${now})`;
        await defineKeyFrame(tx, stream!.id, keyFrameText(inbox.settings.keyFrame));
        await tx`UPDATE streams SET compaction = ${policyText(inboxCompactionPolicy(inbox.settings))} WHERE id = ${stream!.id}`;
        return stream!.id;
      }),
    );
    return { id: inbox.id, name: inbox.name, streamId, settings: inbox.settings, createdAt: now };
  }

  async getInbox(id: string): Promise<StoredInbox | undefined> {
    // Other processes may change an inbox: cache it only briefly.
    const cached = this.inboxCache.get(id);
    if (cached) return cached;
    const [row] = await this.track(
      () => this.sql<InboxRow[]>`
        SELECT id, name, stream_id AS "streamId", token_hash AS "tokenHash", settings, created_at AS "createdAt"
        FROM inboxes WHERE id = ${id} AND deleted_at IS NULL`,
    );
    if (!row) {
      this.inboxCache.delete(id);
      return undefined;
    }
    const inbox = toInbox(row);
    this.inboxCache.set(id, inbox);
    return inbox;
  }

  async listInboxes(): Promise<Inbox[]> {
    const rows = await this.track(
      () => this.sql<InboxRow[]>`
        SELECT id, name, stream_id AS "streamId", token_hash AS "tokenHash", settings, created_at AS "createdAt"
        FROM inboxes WHERE deleted_at IS NULL ORDER BY created_at, id`,
    );
    return rows.map((row) => withoutToken(toInbox(row)));
  }

  async updateInbox(id: string, changes: InboxChanges): Promise<Inbox | undefined> {
    this.inboxCache.delete(id);
    const [row] = await this.track(() =>
      this.sql.begin(async (tx) => {
        const [updated] = await tx<Array<{ id: string; streamId: number }>>`
          UPDATE inboxes SET
            name = CASE WHEN ${changes.name !== undefined} THEN ${changes.name ?? null} ELSE name END,
            settings = COALESCE(${changes.settings === undefined ? null : JSON.stringify(changes.settings)}, settings)
          WHERE id = ${id} AND deleted_at IS NULL RETURNING id, stream_id AS "streamId"`;
        // In the same transaction: the settings and the index they define change together.
        if (updated && changes.settings !== undefined) {
          await defineKeyFrame(tx, updated.streamId, keyFrameText(changes.settings.keyFrame));
          const policy = policyText(inboxCompactionPolicy(changes.settings));
          await tx`UPDATE streams SET compaction = ${policy} WHERE id = ${updated.streamId} AND compaction IS DISTINCT FROM ${policy}`;
        }
        return [updated];
      }),
    );
    if (!row) return undefined;
    this.inboxCache.delete(id);
    const inbox = await this.getInbox(id);
    return inbox && withoutToken(inbox);
  }
}
