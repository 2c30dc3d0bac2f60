/*
 * Compaction of streams with key frames (docs/key-frames.md, "Compaction"): the rules
 * both stores execute. A pass picks a horizon H (the tail minus the policy's lag) and
 * removes every message at or before H that a later change at or before H supersedes,
 * plus tombstones at or before H older than the policy's age. H is then stored on the
 * stream: a delta read positioned before H answers 410 with a pointer to the snapshot,
 * so no reader sees a log with silent holes. Pure: the stores answer the questions
 * (the index rows in key order, a key's next entry) and execute what comes back.
 */
import { TailhookError } from "./errors.js";
import type { InboxSettings } from "./types.js";

export interface CompactionPolicy {
  /** H trails the tail by this many messages, so a reader this close behind never meets a 410. */
  lag: number;
  /** Tombstones (deletes) at or before H older than this go too; null keeps them. */
  tombstoneAgeSeconds: number | null;
}

export const DEFAULT_COMPACTION_LAG = 1000;
export const DEFAULT_TOMBSTONE_AGE_SECONDS = 86_400;

export const COMPACT_HEADER = "stream-compact";
const MAX_LAG = 1_000_000_000;
const MAX_AGE_SECONDS = 100 * 365 * 86_400;

function bad(message: string): TailhookError {
  return new TailhookError("bad_request", message);
}

function boundedInteger(text: string, name: string, max: number): number {
  if (!/^\d{1,10}$/.test(text)) throw bad(`Stream-Compact: ${name} must be a whole number, got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value > max) throw bad(`Stream-Compact: ${name} may be at most ${max}`);
  return value;
}

/**
 * `Stream-Compact: key-frame[; lag=<messages>][; tombstone-age=<seconds>|never]`, the
 * creation header of a compacted state stream. Unknown or repeated parameters are 400.
 */
export function parseCompactHeader(value: string): CompactionPolicy {
  const [mode, ...parameters] = value.split(";").map((part) => part.trim());
  if (mode !== "key-frame") throw bad(`Stream-Compact must be key-frame (with optional parameters), got ${JSON.stringify(value)}`);
  const policy: CompactionPolicy = { lag: DEFAULT_COMPACTION_LAG, tombstoneAgeSeconds: DEFAULT_TOMBSTONE_AGE_SECONDS };
  const seen = new Set<string>();
  for (const parameter of parameters) {
    const match = /^([a-z-]+)=(.*)$/.exec(parameter);
    if (!match || seen.has(match[1]!)) throw bad(`Stream-Compact: bad or repeated parameter ${JSON.stringify(parameter)}`);
    const [, name, text] = match as unknown as [string, string, string];
    seen.add(name);
    if (name === "lag") policy.lag = boundedInteger(text, "lag", MAX_LAG);
    else if (name === "tombstone-age")
      policy.tombstoneAgeSeconds = text === "never" ? null : boundedInteger(text, "tombstone-age", MAX_AGE_SECONDS);
    else throw bad(`Stream-Compact: unknown parameter ${JSON.stringify(name)} (lag, tombstone-age)`);
  }
  return policy;
}

/** The header's value for a policy (echoed on HEAD/GET). */
export function formatCompactHeader(policy: CompactionPolicy): string {
  const age = policy.tombstoneAgeSeconds === null ? "never" : String(policy.tombstoneAgeSeconds);
  return `key-frame; lag=${policy.lag}; tombstone-age=${age}`;
}

/** An inbox's policy from its settings: `retention.compact: true` (an inbox has no tombstones). */
export function inboxCompactionPolicy(settings: InboxSettings): CompactionPolicy | null {
  const retention = settings.retention;
  if (!retention?.compact) return null;
  return { lag: retention.compactLag ?? DEFAULT_COMPACTION_LAG, tombstoneAgeSeconds: null };
}

export function policyText(policy: CompactionPolicy | null): string | null {
  return policy === null ? null : JSON.stringify(policy);
}

export function policyOf(text: string | null): CompactionPolicy | null {
  return text === null ? null : (JSON.parse(text) as CompactionPolicy);
}

/** Where this pass puts H: the tail minus the lag, never backwards. */
export function planHorizon(tailSeq: number, currentHorizon: number, policy: CompactionPolicy): number {
  return Math.max(currentHorizon, tailSeq - policy.lag, 0);
}

/** Tombstones committed before this (ms) may go; undefined when the policy keeps them. */
export function tombstoneCutoff(policy: CompactionPolicy, now: number): number | undefined {
  return policy.tombstoneAgeSeconds === null ? undefined : now - policy.tombstoneAgeSeconds * 1000;
}

/** An index entry of one key: a state_history row (superseded change) of the stream. */
export interface HistoryEntry {
  type: string;
  key: string;
  seq: number;
}

/**
 * Which of `rows` (history rows in (type, key, seq) order, a run of the stream's
 * index) are superseded at or before `horizon`: a row whose key's next entry (the
 * next row of that key, or, for its last row here, `nextSeqOf`, the key's following
 * history row or its latest entry) has a seq at or before H. A snapshot as of any
 * X >= H never needs such a row: the next entry is at or before X.
 */
export function supersededRows(
  rows: HistoryEntry[],
  horizon: number,
  nextSeqOf: (row: HistoryEntry) => number | undefined,
): HistoryEntry[] {
  const removed: HistoryEntry[] = [];
  rows.forEach((row, index) => {
    if (row.seq > horizon) return;
    const following = rows[index + 1];
    const next = following && following.type === row.type && following.key === row.key ? following.seq : nextSeqOf(row);
    if (next !== undefined && next <= horizon) removed.push(row);
  });
  return removed;
}

/*
 * Reads behind H. A delta reader positioned at s < H may have missed removed
 * messages, unless it reads the compacted log itself: from the start, or from an
 * offset handed out while reading it (it names the H it was read at, see
 * core/offsets.ts). That H must still be the stream's, or a later pass removed more.
 */

/** The horizon a reader reads the log at: undefined for the full log (an ordinary offset). */
export type ReadView = number | undefined;

/** Whether a reader after `afterSeq` with this view has lost messages to compaction. */
export function behindHorizon(stream: { horizonSeq: number }, afterSeq: number, view: ReadView): boolean {
  return afterSeq < stream.horizonSeq && view !== stream.horizonSeq;
}

/** The view a reader from the start takes: the stream's horizon, if it reads behind it. */
export function startView(stream: { horizonSeq: number }, afterSeq: number): ReadView {
  return afterSeq < stream.horizonSeq ? stream.horizonSeq : undefined;
}

/** Whether a hole in a page, the seqs expected..found-1, is compaction's (and the reader's view allows it). */
export function holeAllowed(stream: { horizonSeq: number }, found: number, view: ReadView): boolean {
  return view === stream.horizonSeq && found - 1 <= stream.horizonSeq;
}

/** The earliest position a plain delta read can start from: after retention's head and H. */
export function earliestReadable(stream: { firstSeq: number; horizonSeq: number }): number {
  return Math.max(stream.firstSeq - 1, stream.horizonSeq);
}

/** Whether a stream has key frames, so a 410 can point at its snapshot. */
export function hasKeyFrames(stream: { stateProtocol: unknown; keyFrame: string | null }): boolean {
  return stream.stateProtocol !== null || stream.keyFrame !== null;
}

/** The snapshot address of a stream, as a 410 names it. */
export function snapshotPath(streamName: string): string {
  return `/v1/stream/${streamName.split("/").map(encodeURIComponent).join("/")}?offset=snapshot`;
}

/** Where a store's pass over one stream stands: its horizon P from first step to last. */
export interface CompactionPass {
  horizon: number;
  /** The last history row looked at; null: from the first. */
  after: HistoryEntry | null;
  phase: "superseded" | "tombstones";
}

/**
 * The passes a store has under way, one per stream. A pass removes superseded rows
 * first, then old tombstones (which is only right once no superseded row at or before
 * P is left). A new pass starts once P would move past the last finished one's, or,
 * when tombstones age out, once per round (one run of steps, so a run ends).
 */
export class CompactionPasses {
  private readonly passes = new Map<number, CompactionPass>();
  private readonly finished = new Map<number, { horizon: number; round: number }>();

  /** The pass to step for this stream now, or undefined when it has nothing to do. */
  next(stream: { id: number; tailSeq: number; horizonSeq: number; policy: CompactionPolicy }, round: number): CompactionPass | undefined {
    const running = this.passes.get(stream.id);
    if (running) return running;
    const horizon = planHorizon(stream.tailSeq, stream.horizonSeq, stream.policy);
    const last = this.finished.get(stream.id);
    const again = stream.policy.tombstoneAgeSeconds !== null && last?.round !== round;
    if (horizon === 0 || (last !== undefined && last.horizon >= horizon && !again)) return undefined;
    const pass: CompactionPass = { horizon, after: null, phase: "superseded" };
    this.passes.set(stream.id, pass);
    return pass;
  }

  /** The pass's current phase is done: on to tombstones, or finished. Returns whether work is left. */
  phaseDone(streamId: number, round: number): boolean {
    const pass = this.passes.get(streamId);
    if (!pass) return false;
    if (pass.phase === "superseded") {
      pass.phase = "tombstones";
      return true;
    }
    this.passes.delete(streamId);
    this.finished.set(streamId, { horizon: pass.horizon, round });
    return false;
  }

  /**
   * After a pass finished: whether enough was appended meanwhile (a whole step's
   * worth) that the run should go on with a new pass now rather than wait for the next
   * tick. Under sustained ingest that keeps compaction up with the appends; a trickle
   * waits for the tick instead of committing a tiny step after every append.
   */
  worthAnother(stream: { id: number; tailSeq: number; horizonSeq: number; policy: CompactionPolicy }, stepRows: number): boolean {
    const last = this.finished.get(stream.id);
    return last !== undefined && planHorizon(stream.tailSeq, stream.horizonSeq, stream.policy) - last.horizon >= stepRows;
  }

  /** The policy changed: start over. */
  reset(streamId: number): void {
    this.passes.delete(streamId);
    this.finished.delete(streamId);
  }
}
