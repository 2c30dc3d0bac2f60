/*
 * Offsets name the position after a message: "after seq n", written as two fixed-width
 * decimal fields, "<epoch>_<seq>", so that string order is stream order. The epoch is
 * 0 today; it is room for a future renumbering (e.g. a compacted stream) that must
 * still sort after every offset handed out before. Never "-1" or "now", which the
 * protocol reserves. One scheme for every stream. The bare 16-digit form of tailhook
 * 0.1 is still accepted.
 *
 * A position inside a compacted stream's compacted part (before its horizon H, see
 * core/compaction.ts) carries H as a third field, "<epoch>_<seq>_<H>": it was handed
 * out to a reader of the compacted log, which may go on reading it as long as H has
 * not moved. It sorts right after "<epoch>_<seq>" and before "<epoch>_<seq + 1>".
 */
const WIDTH = 16;
const EPOCH = "0".repeat(WIDTH);
const OFFSET_PATTERN = /^(\d{16})_(\d{16})(?:_(\d{16}))?$/;
const LEGACY_PATTERN = /^\d{16}$/;

/** `view`: the horizon of the compacted log the offset was handed out in (absent: the full log). */
export type OffsetRequest = { kind: "start" } | { kind: "now" } | { kind: "after"; seq: number; view?: number };

export function formatOffset(afterSeq: number): string {
  return `${EPOCH}_${String(afterSeq).padStart(WIDTH, "0")}`;
}

/** The offset after `afterSeq` for a reader of a stream whose horizon is `horizonSeq`. */
export function formatReadOffset(afterSeq: number, horizonSeq: number): string {
  const plain = formatOffset(afterSeq);
  return afterSeq < horizonSeq ? `${plain}_${String(horizonSeq).padStart(WIDTH, "0")}` : plain;
}

/** Parses a client's offset; undefined when it is not one we could have issued. */
export function parseOffset(raw: string | undefined): OffsetRequest | undefined {
  if (raw === undefined || raw === "-1") return { kind: "start" };
  if (raw === "now") return { kind: "now" };
  const match = OFFSET_PATTERN.exec(raw);
  const digits = match ? match[2]! : LEGACY_PATTERN.test(raw) ? raw : undefined;
  if (digits === undefined) return undefined;
  // A later epoch than ours lies beyond every position this stream has.
  if (match && match[1] !== EPOCH) return { kind: "after", seq: Number.MAX_SAFE_INTEGER };
  const seq = Number(digits);
  if (!Number.isSafeInteger(seq)) return undefined;
  if (match?.[3] === undefined) return { kind: "after", seq };
  const view = Number(match[3]);
  return Number.isSafeInteger(view) && view > seq ? { kind: "after", seq, view } : undefined;
}
