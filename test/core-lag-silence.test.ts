/*
 * Consumer lag and the silence alarm as pure functions, with the clock passed in:
 * no server, no waiting for real time to pass.
 */
import { describe, expect, it } from "vitest";
import { viewConsumer } from "../dist/core/consumers.js";
import type { Consumer, StreamInfo } from "../dist/core/types.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");

function stream(firstSeq: number, tailSeq: number): StreamInfo {
  return {
    id: 1, name: "inbox/x", contentType: "application/json", tailSeq, firstSeq, closed: false, createdAt: T0,
    softDeleted: false, ttlSeconds: null, expiresAt: null, touchedAt: null, forkedFrom: null, forkSeq: null,
  };
}

function consumer(committedSeq: number): Consumer {
  return { streamId: 1, name: "c", committedSeq, createdAt: T0, lastAckAt: null, lastSeenAt: null };
}

describe("consumer lag", () => {
  it("counts the retained events after the committed one, and its seconds are the age of the oldest of them", () => {
    const view = viewConsumer(consumer(2), stream(1, 7), T0, T0 + 90_400);
    expect(view.lag).toEqual({
      events: 5,
      lostEvents: 0,
      seconds: 90,
      oldestUnackedAt: "2026-01-01T00:00:00.000Z",
      oldestUnackedAgeSeconds: 90,
    });
  });

  it("is zero events and zero seconds when caught up", () => {
    expect(viewConsumer(consumer(7), stream(1, 7), null, T0).lag).toEqual({
      events: 0,
      lostEvents: 0,
      seconds: 0,
      oldestUnackedAt: null,
      oldestUnackedAgeSeconds: null,
    });
  });

  it("leaves events removed by retention out of the lag and counts them as lost", () => {
    const view = viewConsumer(consumer(2), stream(6, 7), T0, T0 + 1000);
    expect(view.lag).toMatchObject({ events: 2, lostEvents: 3, seconds: 1 });
  });

  it("never reports a negative age when the clock is behind the event's time", () => {
    expect(viewConsumer(consumer(0), stream(1, 1), T0, T0 - 5000).lag.seconds).toBe(0);
  });
});
