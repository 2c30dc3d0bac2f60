/*
 * The prune plan both stores execute (core/retention.ts): which heads go, in which
 * order, and how the row budget is charged. No I/O: the "store" here is an array.
 */
import { describe, expect, it } from "vitest";
import {
  ageCutoff,
  deletedTarget,
  planHeadDrops,
  retainedTarget,
  retentionOf,
  type HeadDrop,
  type HeadTarget,
} from "../dist/core/retention.js";
import { inboxIdOf, inboxStreamName, isInboxStreamName } from "../dist/core/stream-names.js";

/** Runs a plan, answering each drop with `removed(drop)` (default: the whole seq range). */
function execute(targets: Iterable<HeadTarget>, budget: number, removed = (drop: HeadDrop) => drop.stopSeq - drop.fromSeq) {
  const drops: HeadDrop[] = [];
  const plan = planHeadDrops(targets, budget);
  let step = plan.next(0);
  while (!step.done) {
    drops.push(step.value);
    step = plan.next(removed(step.value));
  }
  return { drops, left: step.value };
}

describe("retention targets", () => {
  const stream = { streamId: 7, firstSeq: 1, tailSeq: 100 };

  it("keeps the last maxEvents events", () => {
    expect(retainedTarget({ ...stream, retention: { maxEvents: 10 } }, undefined)).toEqual({ streamId: 7, firstSeq: 1, keepFrom: 91 });
  });

  it("never moves the head backwards", () => {
    expect(retainedTarget({ ...stream, firstSeq: 95, retention: { maxEvents: 10 } }, undefined).keepFrom).toBe(95);
  });

  it("keeps from the first young event, or nothing when every event is old", () => {
    const retention = { maxAgeSeconds: 60 };
    expect(retainedTarget({ ...stream, retention }, 40).keepFrom).toBe(40);
    expect(retainedTarget({ ...stream, retention }, null).keepFrom).toBe(101);
  });

  it("takes the stricter of age and count", () => {
    const retention = { maxAgeSeconds: 60, maxEvents: 10 };
    expect(retainedTarget({ ...stream, retention }, 40).keepFrom).toBe(91);
    expect(retainedTarget({ ...stream, retention }, 95).keepFrom).toBe(95);
  });

  it("asks for the age cutoff only when age counts", () => {
    expect(ageCutoff({ maxEvents: 3 }, 1_000_000)).toBeUndefined();
    expect(ageCutoff({ maxAgeSeconds: 60 }, 1_000_000)).toBe(940_000);
  });

  it("reads retention from an inbox's settings JSON", () => {
    expect(retentionOf(JSON.stringify({ retention: { maxEvents: 5 } }))).toEqual({ maxEvents: 5 });
    expect(retentionOf("{}")).toEqual({});
  });

  it("empties a deleted stream", () => {
    expect(deletedTarget({ id: 3, firstSeq: 5, tailSeq: 9 })).toEqual({ streamId: 3, firstSeq: 5, keepFrom: 10 });
  });
});

describe("head drops", () => {
  it("drops each head within the budget, in target order, and returns what is left", () => {
    const { drops, left } = execute(
      [
        { streamId: 1, firstSeq: 1, keepFrom: 4 },
        { streamId: 2, firstSeq: 10, keepFrom: 10 },
        { streamId: 3, firstSeq: 5, keepFrom: 7 },
      ],
      100,
    );
    expect(drops).toEqual([
      { streamId: 1, fromSeq: 1, stopSeq: 4 },
      { streamId: 3, fromSeq: 5, stopSeq: 7 },
    ]);
    expect(left).toBe(95);
  });

  it("cuts the drop that meets the budget and pulls no target after it", () => {
    const pulled: number[] = [];
    function* targets() {
      for (const streamId of [1, 2, 3]) {
        pulled.push(streamId);
        yield { streamId, firstSeq: 1, keepFrom: 11 };
      }
    }
    const { drops, left } = execute(targets(), 15);
    expect(drops).toEqual([
      { streamId: 1, fromSeq: 1, stopSeq: 11 },
      { streamId: 2, fromSeq: 1, stopSeq: 6 },
    ]);
    expect(left).toBe(0);
    expect(pulled).toEqual([1, 2]);
  });

  it("charges the rows a drop removed, not its seq range", () => {
    // A deleted fork holds only its own seqs: the inherited ones cost nothing.
    const { drops, left } = execute(
      [
        { streamId: 1, firstSeq: 1, keepFrom: 1001 },
        { streamId: 2, firstSeq: 1, keepFrom: 3 },
      ],
      1000,
      (drop) => (drop.streamId === 1 ? 5 : drop.stopSeq - drop.fromSeq),
    );
    expect(drops).toEqual([
      { streamId: 1, fromSeq: 1, stopSeq: 1001 },
      { streamId: 2, fromSeq: 1, stopSeq: 3 },
    ]);
    expect(left).toBe(993);
  });

  it("does nothing without a budget", () => {
    expect(execute([{ streamId: 1, firstSeq: 1, keepFrom: 5 }], 0)).toEqual({ drops: [], left: 0 });
  });
});

describe("stream names", () => {
  it("names an inbox's stream and reads the inbox back", () => {
    expect(inboxStreamName("abc")).toBe("inbox/abc");
    expect(isInboxStreamName("inbox/abc")).toBe(true);
    expect(isInboxStreamName("inboxes/abc")).toBe(false);
    expect(inboxIdOf("inbox/abc")).toBe("abc");
    expect(inboxIdOf("orders/abc")).toBeUndefined();
  });
});
