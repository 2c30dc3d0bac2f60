/* The small checks every settings parser uses: a refusal is a 400 that names the field. */
import { TailhookError } from "./errors.js";

export function fail(message: string): never {
  throw new TailhookError("bad_request", message);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Unknown keys are refused rather than ignored, so a typo never silently leaves a default in place. */
export function onlyKeys(value: Record<string, unknown>, allowed: string[], where: string): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) fail(`unknown field ${where}.${key}`);
}
