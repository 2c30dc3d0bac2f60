/*
 * The general-streams part of the storage port: Durable Streams protocol streams as a
 * store keeps them. Requests and outcomes are core types; each operation is validated
 * and applied in one transaction, so checks such as "closed?", "same producer epoch?"
 * or "same config?" cannot race with another write.
 */
import type { StreamInfo } from "../core/types.js";
import type { AppendRequest, AppendResult, CreateStreamRequest, CreateStreamResult, DeleteStreamResult } from "../core/streams.js";

/** A live (or soft-deleted) general stream by name; expired streams count as absent. */
export interface GeneralStreams {
  createStream(request: CreateStreamRequest): Promise<CreateStreamResult>;
  appendStream(request: AppendRequest): Promise<AppendResult>;
  deleteStream(name: string): Promise<DeleteStreamResult>;
  /** Records a read, which restarts a sliding TTL (throttled, see TouchThrottle; never delays the read). */
  touchStream(stream: StreamInfo): void;
  /** Live general streams (not inboxes), for subscriptions' glob backfill. */
  listGeneralStreams(): Promise<StreamInfo[]>;
  listRecords(kind: string): Promise<Array<{ key: string; value: string }>>;
  putRecord(kind: string, key: string, value: string | null): Promise<void>;
}
