/*
 * The forward tests' flaky target (test/helpers/target.ts) fails one event at most
 * maxFailuresInARow times in a row, so a forwarder's backoff on one event stays inside
 * a test's wait however the dice fall (a CI run once saw 8 failures in a row).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Target } from "./helpers/target.js";

describe("the flaky test target", () => {
  let target: Target;
  beforeAll(async () => {
    target = await Target.start();
  });
  afterAll(async () => {
    await target.close();
  });

  it("fails an event at most maxFailuresInARow times in a row, then takes it", async () => {
    target.mode = "flaky";
    target.flakyOdds = { status503: 1, status500: 0, reset: 0 };
    const post = async (seq: number) =>
      (await fetch(`${target.url}/hook`, { method: "POST", headers: { "x-tailhook-seq": String(seq) }, body: "x" })).status;
    const answers: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) answers.push(await post(7));
    expect(answers).toEqual([503, 503, 503, 503, 200, 503]);
    // Another event has a run of its own.
    expect(await post(8)).toBe(503);
  });
});
