/*
 * Offsets name the position after a message: "after seq n". They are fixed-width
 * decimal so that string order is stream order, and never "-1" or "now", which the
 * protocol reserves as sentinels. One scheme for every stream.
 */
const WIDTH = 16;
const OFFSET_PATTERN = /^\d{16}$/;

export type OffsetRequest =
  | { kind: "start" }
  | { kind: "now" }
  | { kind: "after"; seq: number };

export function formatOffset(afterSeq: number): string {
  return String(afterSeq).padStart(WIDTH, "0");
}

/** Parses a client's offset; undefined when it is not one we could have issued. */
export function parseOffset(raw: string | undefined): OffsetRequest | undefined {
  if (raw === undefined || raw === "-1") return { kind: "start" };
  if (raw === "now") return { kind: "now" };
  if (!OFFSET_PATTERN.test(raw)) return undefined;
  const seq = Number(raw);
  return Number.isSafeInteger(seq) ? { kind: "after", seq } : undefined;
}
