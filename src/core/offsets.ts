/*
 * Offsets name the position after a message: "after seq n", written as two fixed-width
 * decimal fields, "<epoch>_<seq>", so that string order is stream order. The epoch is
 * 0 today; it is room for a future renumbering (e.g. a compacted stream) that must
 * still sort after every offset handed out before. Never "-1" or "now", which the
 * protocol reserves. One scheme for every stream. The bare 16-digit form of tailhook
 * 0.1 is still accepted.
 */
const WIDTH = 16;
const EPOCH = "0".repeat(WIDTH);
const OFFSET_PATTERN = /^(\d{16})_(\d{16})$/;
const LEGACY_PATTERN = /^\d{16}$/;

export type OffsetRequest = { kind: "start" } | { kind: "now" } | { kind: "after"; seq: number };

export function formatOffset(afterSeq: number): string {
  return `${EPOCH}_${String(afterSeq).padStart(WIDTH, "0")}`;
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
  return Number.isSafeInteger(seq) ? { kind: "after", seq } : undefined;
}
