/*
 * Consumer lag and the silence alarm as pure functions, with the clock passed in:
 * no server, no waiting for real time to pass.
 */
import { describe, expect, it } from "vitest";
import { viewConsumer } from "../dist/core/consumers.js";
import { parseInboxSettings } from "../dist/core/inbox-settings.js";
import { inboxActivity, silenceOf } from "../dist/core/silence.js";
import type { Consumer, StreamInfo } from "../dist/core/types.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");

function stream(firstSeq: number, tailSeq: number): StreamInfo {
  return {
    id: 1,
    name: "inbox/x",
    contentType: "application/json",
    tailSeq,
    firstSeq,
    closed: false,
    createdAt: T0,
    softDeleted: false,
    ttlSeconds: null,
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

describe("silenceOf", () => {
  const every60 = { expectEvery: 60 };

  it("is never silent without expectEvery, however long it has been", () => {
    expect(silenceOf({}, null, T0, T0 + 365 * 86_400_000)).toEqual({ silent: false, silentSince: null });
    expect(silenceOf({ maxBodyBytes: 10 }, T0, T0, T0 + 365 * 86_400_000)).toEqual({ silent: false, silentSince: null });
  });

  it("is silent once expectEvery seconds passed since the last event, and says since when", () => {
    const last = T0 + 5_000;
    expect(silenceOf(every60, last, T0, last + 59_999)).toEqual({ silent: false, silentSince: null });
    expect(silenceOf(every60, last, T0, last + 60_000)).toEqual({ silent: true, silentSince: last + 60_000 });
    expect(silenceOf(every60, last, T0, last + 3_600_000)).toEqual({ silent: true, silentSince: last + 60_000 });
  });

  it("counts from the inbox's creation before the first event", () => {
    expect(silenceOf(every60, null, T0, T0 + 30_000)).toEqual({ silent: false, silentSince: null });
    expect(silenceOf(every60, null, T0, T0 + 61_000)).toEqual({ silent: true, silentSince: T0 + 60_000 });
  });

  it("inboxActivity renders the times as ISO strings for the API", () => {
    expect(inboxActivity(every60, T0, 3, T0 + 1000, T0 + 120_000)).toEqual({
      lastSeq: 3,
      lastEventAt: "2026-01-01T00:00:01.000Z",
      silent: true,
      silentSince: "2026-01-01T00:01:01.000Z",
    });
    expect(inboxActivity({}, T0, 0, null, T0)).toEqual({ lastSeq: 0, lastEventAt: null, silent: false, silentSince: null });
  });
});

describe("settings.expectEvery", () => {
  it("takes whole seconds from 1 to 366 days, and null removes it", () => {
    expect(parseInboxSettings({ expectEvery: 3600 })).toEqual({ expectEvery: 3600 });
    expect(parseInboxSettings({ expectEvery: 366 * 86_400 })).toEqual({ expectEvery: 366 * 86_400 });
    expect(parseInboxSettings({ expectEvery: null }, { expectEvery: 60, maxBodyBytes: 5 })).toEqual({ maxBodyBytes: 5 });
    for (const bad of [0, -1, 1.5, "60", true, 366 * 86_400 + 1, {}]) {
      expect(() => parseInboxSettings({ expectEvery: bad }), JSON.stringify(bad)).toThrow(
        /settings.expectEvery must be an integer from 1 to 31622400/,
      );
    }
  });
});
