/*
 * Waiting for a condition in tests: vi.waitFor with a yes/no condition (vi.waitFor
 * itself takes any non-throwing return as done) and a message saying what was awaited.
 */
import { vi } from "vitest";

export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
  seen: () => string = () => "",
): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await condition())) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen()}`);
    },
    { timeout: timeoutMs, interval: 20 },
  );
}
