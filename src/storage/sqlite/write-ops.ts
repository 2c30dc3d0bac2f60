/*
 * The messages between the store and its writer thread. Every change to the database
 * is one of these operations; the thread runs a batch of them in one transaction.
 */
import type { CapturedRequest, Consumer } from "../../core/types.js";
import type { InboxChanges, NewInbox } from "../store.js";
import type { AppendRequest, AppendResult, CreateStreamRequest, CreateStreamResult, DeleteStreamResult } from "../../core/streams.js";

export type WriteOp =
  | {
      kind: "appendEvent";
      streamId: number;
      /** Without its annotations: they travel encoded (core/capture.ts says why). */
      request: Omit<CapturedRequest, "annotations">;
      /**
       * The event's meta column, encoded once on the main thread: the same string is
       * stored and handed to live readers at the tail (CommitDetail). Absent with `verify`.
       */
      meta?: string;
      dedupe?: { key: string; windowMs: number; now: number };
      /**
       * The inbox's verify settings as JSON text (verify-settings.ts): the writer checks
       * the signature and encodes the meta itself, from the request, its own annotations
       * (`annotationsJson`) and the verdict, and sends it back with the result.
       */
      verify?: string;
      annotationsJson?: string;
    }
  | { kind: "createInbox"; inbox: NewInbox; now: number }
  | { kind: "updateInbox"; id: string; changes: InboxChanges }
  | { kind: "deleteInbox"; id: string; now: number }
  | { kind: "prune"; now: number; maxRows: number }
  /** One compaction step (compaction-writes.ts); `round` names the run of steps it belongs to. */
  | { kind: "compact"; now: number; maxRows: number; round: number }
  | { kind: "setCompactionPolicy"; streamId: number; policy: string | null }
  | { kind: "ensureConsumer"; streamId: number; name: string; startSeq: number; now: number }
  | { kind: "ackConsumer"; streamId: number; name: string; seq: number; now: number }
  | { kind: "deleteConsumer"; streamId: number; name: string }
  | { kind: "markConsumerSeen"; streamId: number; name: string; now: number }
  | { kind: "createStream"; request: CreateStreamRequest; now: number }
  | { kind: "appendStream"; request: AppendRequest; now: number }
  | { kind: "deleteStream"; name: string; now: number }
  | { kind: "touchStreams"; streamIds: number[]; now: number }
  | { kind: "putRecord"; recordKind: string; key: string; value: string | null };

export type WriteResult =
  /** meta: the one the writer encoded (with `verify`), for live readers at the tail. */
  | { status: "appended"; seq: number; unverified?: string; meta?: string }
  | { status: "duplicate"; seq: number; id: string; unverified?: string }
  | { status: "refused"; reason: string }
  | { status: "created"; streamId: number }
  | { status: "updated" }
  | { status: "deleted" }
  | { status: "not_found" }
  | { status: "pruned"; rows: number }
  | { status: "compacted"; removed: number; more: boolean }
  | { status: "consumer"; consumer: Consumer }
  | { status: "stream"; result: CreateStreamResult | AppendResult | DeleteStreamResult };

/** Roughly what an operation adds to a transaction, to bound batches. */
export function writeOpBytes(op: WriteOp): number {
  if (op.kind === "appendEvent") return op.request.body.byteLength + 256;
  if (op.kind === "appendStream" || op.kind === "createStream") {
    return op.request.messages.reduce((sum, message) => sum + message.byteLength + 64, 256);
  }
  return 256;
}

export type ToWriter = { type: "batch"; id: number; ops: WriteOp[] } | { type: "close" };

export type FromWriter =
  | { type: "ready" }
  | { type: "open_failed"; message: string }
  | { type: "done"; id: number; results: WriteResult[]; extended: Array<[number, number]> }
  /** `permanent`: the thread will never commit again (see PermanentWriteFailure). */
  | { type: "failed"; id: number; message: string; permanent?: PermanentWriteFailure; bug?: boolean }
  | { type: "closed" };

/**
 * Failures after which the writer must never be restarted: "data_folder_lost" means
 * the folder no longer names the database file the writer commits to, so a restart
 * would acknowledge events into a file nobody can read again (or a fresh one).
 */
export type PermanentWriteFailure = "data_folder_lost";

export interface WriterOptions {
  file: string;
  /** A restarted thread must find the database it replaces, never create a fresh one. */
  mustExist: boolean;
}
