/*
 * The key index of a state stream, as both stores keep it in the transaction of each
 * append: per (type, key) the seq of its latest change message (state_keys; a delete
 * is a tombstone), every superseded one (state_history), and the seqs of `reset`
 * messages (state_resets). The history is what makes a snapshot "as of X" exact while
 * appends continue: a key changed after X is found at its latest message at or before X.
 * This file plans the rows an append writes and answers what a key is as of X.
 */
import { judgeStateMessages, type StateEntry } from "./state-messages.js";

export interface KeyEntry {
  type: string;
  key: string;
  seq: number;
  deleted: boolean;
}

export interface KeyIndexPlan {
  /** The last change of each (type, key) in the append: its new latest (the old one moves to history). */
  latest: KeyEntry[];
  /** Changes superseded within the same append: straight into history. */
  superseded: KeyEntry[];
  resets: number[];
}

/** The index rows for messages afterSeq+1, afterSeq+2, … with these entries. */
export function planKeyIndex(entries: StateEntry[], afterSeq: number): KeyIndexPlan {
  const latest = new Map<string, KeyEntry>();
  const superseded: KeyEntry[] = [];
  const resets: number[] = [];
  entries.forEach((entry, index) => {
    const seq = afterSeq + index + 1;
    if (entry.kind === "reset") resets.push(seq);
    if (entry.kind !== "change") return;
    const id = JSON.stringify([entry.type, entry.key]);
    const earlier = latest.get(id);
    if (earlier) superseded.push(earlier);
    latest.set(id, { type: entry.type, key: entry.key, seq, deleted: entry.deleted });
  });
  return { latest: [...latest.values()], superseded, resets };
}

/** A key's latest entry and, when that is after X, its latest superseded entry at or before X. */
export interface IndexedKey {
  type: string;
  key: string;
  seq: number;
  deleted: boolean;
  before?: { seq: number; deleted: boolean } | undefined;
}

/**
 * The seq of the message that holds the key's value as of X, or undefined when the
 * key had no value then (not yet written, deleted, or cleared by a reset at resetSeq).
 */
export function valueSeqAsOf(indexed: IndexedKey, asOfSeq: number, resetSeq: number): number | undefined {
  const entry = indexed.seq <= asOfSeq ? indexed : indexed.before;
  if (!entry || entry.deleted || entry.seq <= resetSeq) return undefined;
  return entry.seq;
}

export type StateWritePlan =
  { status: "write"; index: KeyIndexPlan | null } | { status: "invalid_state_message"; index: number; reason: string };

/** For an append after afterSeq: nothing to index (not a state stream), the index rows, or the refusal. */
export function planStateWrite(stateProtocol: string | null, messages: Uint8Array[], afterSeq: number): StateWritePlan {
  if (stateProtocol === null || messages.length === 0) return { status: "write", index: null };
  const judged = judgeStateMessages(messages);
  if (!judged.valid) return { status: "invalid_state_message", index: judged.index, reason: judged.reason };
  return { status: "write", index: planKeyIndex(judged.entries, afterSeq) };
}
