/*
 * The storage port. Every backend keeps streams of gapless, numbered messages and the
 * inboxes that write into them; a write resolves only once it is committed and on
 * disk. Expected outcomes are values; a rejected promise is either the store's own
 * trouble, which isFailure() recognises (the HTTP layer answers 503: retry), or a
 * programming error (500).
 */
import type { GeneralStreams } from "./streams.js";
import type { StoreObserver } from "./store-observer.js";
import type { SnapshotPage, SnapshotPageRequest } from "../core/state/snapshot.js";
import type { CompactionPolicy } from "../core/compaction.js";
import type { VerifySettings } from "../core/verify/settings.js";
import type { CapturedRequest, Consumer, Inbox, InboxSettings, StoredInbox, StoredMessage, StreamInfo } from "../core/types.js";

/**
 * A duplicate names the event it repeats (its seq and event id), which may since have
 * been pruned by retention while its dedupe entry is still inside the window.
 */
export type AppendEventResult =
  | ({ status: "appended"; seq: number } & Unverified)
  | ({ status: "duplicate"; seq: number; id: string } & Unverified)
  /** The signature check failed in enforce mode: nothing was stored, no delivery id was claimed. */
  | { status: "refused"; reason: string }
  | { status: "not_found" };

/** With `verify` in annotate mode: why the stored request failed its check (absent when it passed). */
interface Unverified {
  unverified?: string;
}

export interface AppendEventOptions {
  /**
   * Append only if no event of this stream carried `key` within the last `windowMs`;
   * otherwise count one more delivery of that event and answer "duplicate". Checked
   * and recorded in the transaction of the append.
   */
  dedupe?: { key: string; windowMs: number };
  /**
   * Check the request's signature first (core/verify): the verdict is stored with the
   * event, and a failure in enforce mode is refused. Checked in the append's own turn,
   * before the dedupe check (a forged request claims no delivery id), wherever the
   * store likes before the commit: SQLite does it on its writer thread, off the thread
   * that serves HTTP.
   */
  verify?: VerifySettings;
}

/** A delivery id the stream has seen: the event that carried it first, and how many times it came. */
export interface DeliveryRecord {
  seq: number;
  /** The event id of that first delivery. */
  id: string;
  /** Deliveries seen, the first included (1 = never repeated). */
  deliveries: number;
  firstAt: number;
}

export interface NewInbox {
  id: string;
  name: string | null;
  tokenHash: Buffer;
  settings: InboxSettings;
}

export interface InboxChanges {
  name?: string | null;
  settings?: InboxSettings;
}

export interface ReadLimits {
  /** Stop after this many messages. */
  maxMessages: number;
  /** Stop once this many bytes were read (at least one message is always returned). */
  maxBytes: number;
}

/** What one commit appended to one stream, as a store read would then give it. */
export interface AppendedMessages {
  messages: StoredMessage[];
  /** The stream's touchedAt after the commit, when an append moved it (Durable Streams appends do). */
  touchedAt?: number;
}

/**
 * What a commit wrote, from a store that knows it without reading back (SQLite's own
 * commits): per stream, the messages it appended there, in seq order, for live
 * readers at the tail (live/recent-tails.ts). A stream extended but absent here was
 * extended some other way; `otherChanges`: the commit changed streams in ways the
 * tails do not tell (retention, compaction, settings, touches, deletes), so whatever
 * a reader remembers of any stream must be read again.
 */
export interface CommitDetail {
  /** Built only when asked: most commits have no follower at all for the streams they wrote. */
  appendedTo(streamId: number): AppendedMessages | undefined;
  otherChanges: boolean;
}

/**
 * Called after each commit with the streams it extended, so waiting readers wake. A
 * tail of Number.MAX_SAFE_INTEGER means "wake everyone": the stream was closed or removed.
 * Without `detail` (PostgreSQL, commits of other processes, tail re-checks) a reader
 * knows only the tails and reads the store.
 */
export type CommitListener = (streams: ReadonlyMap<number, number>, detail?: CommitDetail) => void;

/**
 * Leadership among the processes sharing a store: at most one holds it at a time, for
 * work that must run once per database (e.g. the subscription service).
 */
export interface Leadership {
  /**
   * Tries to become leader now and then keeps trying (or keeps checking it still is);
   * onChange hears every change. Resolves after the first attempt, so a process that
   * could lead at once already does.
   */
  start(onChange: (leading: boolean) => void): Promise<void>;
  /** Gives leadership up (if held) and releases what it used. */
  stop(): Promise<void>;
}

export interface Store {
  createInbox(inbox: NewInbox): Promise<Inbox>;
  getInbox(id: string): Promise<StoredInbox | undefined>;
  listInboxes(): Promise<Inbox[]>;
  updateInbox(id: string, changes: InboxChanges): Promise<Inbox | undefined>;
  /** Removes the inbox and, in the background, its events. False if it did not exist. */
  deleteInbox(id: string): Promise<boolean>;

  appendEvent(streamId: number, request: CapturedRequest, options?: AppendEventOptions): Promise<AppendEventResult>;
  /** The dedupe entry for this delivery id, while it is kept (its window, until pruned). */
  findDelivery(streamId: number, key: string): Promise<DeliveryRecord | undefined>;

  getStream(name: string): Promise<StreamInfo | undefined>;
  getStreamById(id: number): Promise<StreamInfo | undefined>;
  /** Messages with seq > afterSeq, oldest first, within the limits. */
  readMessages(streamId: number, afterSeq: number, limits: ReadLimits): Promise<StoredMessage[]>;
  readMessage(streamId: number, seq: number): Promise<StoredMessage | undefined>;
  /** One page of a state stream's snapshot as of request.asOfSeq (core/state/snapshot.ts), read as one consistent snapshot. */
  readSnapshotPage(streamId: number, request: SnapshotPageRequest): Promise<SnapshotPage>;
  /**
   * Gives a stream its compaction policy (core/compaction.ts), or none (null); false
   * when the stream does not exist. The pass runs in the store's periodic prune.
   */
  setCompactionPolicy(streamId: number, policy: CompactionPolicy | null): Promise<boolean>;
  /** Runs compaction now, to the end of the work it finds (tests); resolves with the messages removed. */
  compactNow?(): Promise<number>;
  /** When message `seq` was committed (ms), without reading its body; undefined if it is not retained. */
  messageTime(streamId: number, seq: number): Promise<number | undefined>;

  getConsumer(streamId: number, name: string): Promise<Consumer | undefined>;
  listConsumers(streamId: number): Promise<Consumer[]>;
  /** Returns the consumer, creating it at `startSeq` if it does not exist yet. */
  ensureConsumer(streamId: number, name: string, startSeq: number): Promise<Consumer>;
  /** Commits up to `seq` (creating the consumer if needed); a lower seq than committed changes nothing. */
  ackConsumer(streamId: number, name: string, seq: number): Promise<Consumer>;
  deleteConsumer(streamId: number, name: string): Promise<boolean>;
  /** Records that the consumer read just now (may be coalesced). */
  markConsumerSeen(streamId: number, name: string): Promise<void>;

  onCommit(listener: CommitListener): void;
  /** True while the store can take writes. */
  isHealthy(): boolean;
  /**
   * An error thrown outside any call (from a client library's timer) that this store
   * knows to be harmless; the process guard (src/process-guards.ts) lets it pass.
   */
  isIgnorableProcessError?(error: unknown): boolean;

  /*
   * Optional capabilities of stores shared by several processes: commits made
   * elsewhere arrive as notifications, which can be lost, so the live readers'
   * streams are also re-checked with getTails on a timer; ping answers /readyz.
   */
  getTails?(streamIds: number[]): Promise<Map<number, number>>;
  /** Durable Streams protocol streams (create/append/delete/fork); absent when the backend lacks them. */
  readonly general?: GeneralStreams;
  ping?(): Promise<boolean>;
  /**
   * Leadership named `name` among the processes sharing this store; absent on stores
   * only one process opens (SQLite), where that process always leads. onError hears
   * failed tries and checks (the database may be down).
   */
  leadership?(name: string, onError?: (error: unknown) => void): Leadership;
  /** Group-commit batch sizes and retention removals, for the metrics (store-observer.ts). */
  observe?(observer: StoreObserver): void;
  /**
   * Whether `error`, rejected by one of this store's methods, is the store's own trouble:
   * a full or read-only disk, a database that cannot be reached or is shutting down, a
   * writer thread being restarted, the store closing. Retrying later can work, so HTTP
   * answers 503 with Retry-After. Anything else (a TypeError, a refused statement) is a
   * programming error, which retrying does not fix: 500.
   */
  isFailure(error: unknown): boolean;
  /** Waits for queued writes, then releases files and threads. */
  close(): Promise<void>;
}
