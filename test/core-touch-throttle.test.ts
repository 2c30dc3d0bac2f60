/*
 * The read-touch throttle (core/streams.ts TouchThrottle) is a bounded cache: when it
 * is full, remembering one more stream forgets the least recently used one, not all
 * of them (which would turn the next read of every stream into a write). Pure, no I/O.
 */
import { describe, expect, it } from "vitest";
import { TouchThrottle } from "../dist/core/streams.js";
import type { StreamInfo } from "../dist/core/types.js";

const TTL_SECONDS = 60;
const NOW = 1_000_000;

function stream(id: number): StreamInfo {
  return {
    id,
    name: `s${id}`,
    contentType: "text/plain",
    tailSeq: 0,
    firstSeq: 1,
    closed: false,
    createdAt: 0,
    softDeleted: false,
    ttlSeconds: TTL_SECONDS,
    expiresAt: null,
    touchedAt: null,
    forkedFrom: null,
    forkSeq: null,
    stateProtocol: null,
    keyFrame: null,
    keyFrameVersion: 0,
    horizonSeq: 0,
    compaction: null,
  };
}

describe("TouchThrottle", () => {
  it("records a stream's read at most once per 5% of its TTL", () => {
    const throttle = new TouchThrottle();
    expect(throttle.due(stream(1), NOW)).toBe(true);
    expect(throttle.due(stream(1), NOW + TTL_SECONDS * 50 - 1)).toBe(false);
    expect(throttle.due(stream(1), NOW + TTL_SECONDS * 50)).toBe(true);
  });

  it("when full, forgets the least recently used stream only", () => {
    const size = 10_000;
    const throttle = new TouchThrottle(size);
    for (let id = 1; id <= size; id++) expect(throttle.due(stream(id), NOW)).toBe(true);
    expect(throttle.due(stream(size + 1), NOW)).toBe(true);
    // Stream 1 was the oldest entry: forgotten, so its next read is due again.
    expect(throttle.due(stream(1), NOW + 1)).toBe(true);
    // Every other stream is still remembered: no read of theirs is due yet.
    for (let id = 3; id <= size + 1; id++) expect(throttle.due(stream(id), NOW + 1)).toBe(false);
  });
});
