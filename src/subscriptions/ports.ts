/*
 * What the subscription service needs from the rest of tailhook: the general streams
 * (to link, watch and wake) and a small durable record store (to keep subscriptions,
 * cursors and the signing key across restarts). The stream layer implements both.
 */

/** A general stream's path (stream-root-relative, e.g. "events/abc") and its tail offset. */
export interface StreamTail {
  path: string;
  tailOffset: string;
}

export interface StreamDirectory {
  /** Every live general stream with its tail offset (for glob backfill). */
  list(): Promise<StreamTail[]>;
  /** The tail offset of a live general stream, undefined when it does not exist. */
  tailOffset(path: string): Promise<string | undefined>;
  /** Appends one JSON value as one message to an application/json stream; resolves once durable. */
  appendJson(path: string, value: unknown): Promise<"appended" | "not_found" | "rejected">;
  /**
   * Called after each commit with the general streams it extended or created, with their
   * new tails. `created` is true for a stream created by this commit (linked at the start).
   */
  onAppend(listener: (changes: Array<StreamTail & { created: boolean }>) => void): void;
}

/** Durable key/value records, grouped by kind; a put resolves only once committed and fsynced. */
export interface RecordStore {
  listRecords(kind: string): Promise<Array<{ key: string; value: string }>>;
  /** Writes the record, or deletes it when value is null. */
  putRecord(kind: string, key: string, value: string | null): Promise<void>;
}
