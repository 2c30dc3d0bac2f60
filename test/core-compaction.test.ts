/*
 * The compaction rules both stores execute (core/compaction.ts): the policy header,
 * where H goes, which index rows a pass removes, and which readers are behind H. No I/O.
 */
import { describe, expect, it } from "vitest";
import {
  behindHorizon,
  CompactionPasses,
  DEFAULT_COMPACTION_LAG,
  DEFAULT_TOMBSTONE_AGE_SECONDS,
  formatCompactHeader,
  holeAllowed,
  inboxCompactionPolicy,
  parseCompactHeader,
  planHorizon,
  snapshotPath,
  startView,
  supersededRows,
  tombstoneCutoff,
  type HistoryEntry,
} from "../dist/core/compaction.js";
import { formatOffset, formatReadOffset, parseOffset } from "../dist/core/offsets.js";
import { parseInboxSettings } from "../dist/core/inbox-settings.js";

describe("the compaction policy", () => {
  it("reads Stream-Compact with its defaults and parameters, and refuses anything else", () => {
    expect(parseCompactHeader("key-frame")).toEqual({ lag: DEFAULT_COMPACTION_LAG, tombstoneAgeSeconds: DEFAULT_TOMBSTONE_AGE_SECONDS });
    expect(parseCompactHeader("key-frame; lag=0; tombstone-age=60")).toEqual({ lag: 0, tombstoneAgeSeconds: 60 });
    expect(parseCompactHeader("key-frame;tombstone-age=never")).toEqual({ lag: DEFAULT_COMPACTION_LAG, tombstoneAgeSeconds: null });
    for (const bad of ["", "yes", "key-frame; lag=-1", "key-frame; lag=1.5", "key-frame; lag=1; lag=2", "key-frame; depth=3"]) {
      expect(() => parseCompactHeader(bad), bad).toThrow(/Stream-Compact/);
    }
    const policy = { lag: 5, tombstoneAgeSeconds: null };
    expect(parseCompactHeader(formatCompactHeader(policy))).toEqual(policy);
  });

  it("gives an inbox with retention.compact a policy without tombstones, with its lag", () => {
    expect(inboxCompactionPolicy({})).toBeNull();
    expect(inboxCompactionPolicy({ retention: { compact: true } })).toEqual({ lag: DEFAULT_COMPACTION_LAG, tombstoneAgeSeconds: null });
    expect(inboxCompactionPolicy({ retention: { compact: true, compactLag: 0 } })).toEqual({ lag: 0, tombstoneAgeSeconds: null });
  });

  it("accepts retention.compact with a keyFrame, and compactLag only with compact", () => {
    const keyFrame = { preset: "stripe" };
    expect(parseInboxSettings({ keyFrame, retention: { compact: true, compactLag: 3 } }).retention).toEqual({
      compact: true,
      compactLag: 3,
    });
    expect(() => parseInboxSettings({ retention: { compact: true } })).toThrow(/needs settings.keyFrame/);
    expect(() => parseInboxSettings({ keyFrame, retention: { compactLag: 3 } })).toThrow(/needs settings.retention.compact/);
    expect(() => parseInboxSettings({ keyFrame, retention: { compact: true, compactLag: -1 } })).toThrow(/compactLag/);
  });

  it("puts H at the tail minus the lag, never backwards, and ages tombstones", () => {
    expect(planHorizon(100, 0, { lag: 0, tombstoneAgeSeconds: null })).toBe(100);
    expect(planHorizon(100, 0, { lag: 30, tombstoneAgeSeconds: null })).toBe(70);
    expect(planHorizon(10, 0, { lag: 30, tombstoneAgeSeconds: null })).toBe(0);
    expect(planHorizon(100, 90, { lag: 30, tombstoneAgeSeconds: null })).toBe(90);
    expect(tombstoneCutoff({ lag: 0, tombstoneAgeSeconds: 60 }, 100_000)).toBe(40_000);
    expect(tombstoneCutoff({ lag: 0, tombstoneAgeSeconds: null }, 100_000)).toBeUndefined();
  });
});

describe("which index rows a pass removes", () => {
  const row = (key: string, seq: number): HistoryEntry => ({ type: "t", key, seq });

  it("removes a row whose key's next entry is at or before H, and keeps the last one at or before H", () => {
    // Key a: history 1, 4, 8; latest 12. Key b: history 2; latest 9.
    const rows = [row("a", 1), row("a", 4), row("a", 8), row("b", 2)];
    const latest: Record<string, number> = { a: 12, b: 9 };
    const next = (entry: HistoryEntry) => latest[entry.key];
    expect(supersededRows(rows, 10, next).map((entry) => entry.seq)).toEqual([1, 4, 2]);
    expect(supersededRows(rows, 5, next).map((entry) => entry.seq)).toEqual([1]);
    expect(supersededRows(rows, 12, next).map((entry) => entry.seq)).toEqual([1, 4, 8, 2]);
    expect(supersededRows(rows, 0, next)).toEqual([]);
  });

  it("asks for the next entry only of a key's last row in the run", () => {
    const asked: number[] = [];
    supersededRows([row("a", 1), row("a", 4), row("b", 2)], 10, (entry) => {
      asked.push(entry.seq);
      return undefined;
    });
    expect(asked).toEqual([4, 2]);
  });
});

describe("passes", () => {
  const policy = { lag: 0, tombstoneAgeSeconds: null };

  it("keeps P for a pass, goes superseded then tombstones, and starts again only once P would move", () => {
    const passes = new CompactionPasses();
    const stream = { id: 1, tailSeq: 10, horizonSeq: 0, policy };
    const pass = passes.next(stream, 1)!;
    expect(pass).toEqual({ horizon: 10, after: null, phase: "superseded" });
    expect(passes.next({ ...stream, tailSeq: 20 }, 1)).toBe(pass);
    expect(passes.phaseDone(1, 1)).toBe(true);
    expect(pass.phase).toBe("tombstones");
    expect(passes.phaseDone(1, 1)).toBe(false);
    expect(passes.next(stream, 2)).toBeUndefined();
    expect(passes.worthAnother({ ...stream, tailSeq: 15 }, 8)).toBe(false);
    expect(passes.worthAnother({ ...stream, tailSeq: 18 }, 8)).toBe(true);
    expect(passes.next({ ...stream, tailSeq: 11 }, 2)?.horizon).toBe(11);
  });

  it("with an age for tombstones, passes again once per round at the same P", () => {
    const passes = new CompactionPasses();
    const stream = { id: 1, tailSeq: 10, horizonSeq: 0, policy: { lag: 0, tombstoneAgeSeconds: 60 } };
    passes.next(stream, 1);
    passes.phaseDone(1, 1);
    passes.phaseDone(1, 1);
    expect(passes.next(stream, 1)).toBeUndefined();
    expect(passes.next(stream, 2)?.horizon).toBe(10);
  });
});

describe("readers behind H", () => {
  const stream = { horizonSeq: 50 };

  it("lets a reader of the full log on at or after H, and one of the compacted log while H stays", () => {
    expect(behindHorizon(stream, 50, undefined)).toBe(false);
    expect(behindHorizon(stream, 49, undefined)).toBe(true);
    expect(behindHorizon(stream, 10, 50)).toBe(false);
    expect(behindHorizon(stream, 10, 40)).toBe(true);
    expect(behindHorizon({ horizonSeq: 0 }, 0, undefined)).toBe(false);
    expect(startView(stream, 0)).toBe(50);
    expect(startView(stream, 50)).toBeUndefined();
  });

  it("allows a hole only behind H, and only to a reader of the compacted log at that H", () => {
    expect(holeAllowed(stream, 51, 50)).toBe(true);
    expect(holeAllowed(stream, 52, 50)).toBe(false);
    expect(holeAllowed(stream, 30, undefined)).toBe(false);
    expect(holeAllowed(stream, 30, 40)).toBe(false);
  });

  it("hands out offsets that name H behind it, which sort between their neighbours and parse back", () => {
    const inside = formatReadOffset(7, 50);
    expect(inside).toBe(`${formatOffset(7)}_${"50".padStart(16, "0")}`);
    expect(formatReadOffset(50, 50)).toBe(formatOffset(50));
    expect([formatOffset(8), inside, formatOffset(7)].sort()).toEqual([formatOffset(7), inside, formatOffset(8)]);
    expect(parseOffset(inside)).toEqual({ kind: "after", seq: 7, view: 50 });
    expect(parseOffset(formatOffset(7))).toEqual({ kind: "after", seq: 7 });
    expect(parseOffset(`${formatOffset(60)}_${"50".padStart(16, "0")}`)).toBeUndefined();
  });

  it("names the snapshot of the stream", () => {
    expect(snapshotPath("inbox/abc")).toBe("/v1/stream/inbox/abc?offset=snapshot");
    expect(snapshotPath("a b/c")).toBe("/v1/stream/a%20b/c?offset=snapshot");
  });
});
