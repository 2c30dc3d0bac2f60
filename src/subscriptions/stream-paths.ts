/*
 * Stream paths in subscription bodies are stream-root-relative ("events/abc"). We take
 * them with or without surrounding slashes and keep one spelling, so that the same
 * stream is never linked twice and the config hash does not depend on slashes.
 */

export const RESERVED_SEGMENT = "__ds";
const MAX_PATH_LENGTH = 1024;

/** The normalized path, or undefined when it cannot name an application stream. */
export function normalizeStreamPath(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const path = raw.replace(/^\/+/, "").replace(/\/+$/, "");
  if (path === "" || path.length > MAX_PATH_LENGTH) return undefined;
  const segments = path.split("/");
  if (segments[0] === RESERVED_SEGMENT) return undefined;
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) return undefined;
  if (/[\u0000-\u001f\u007f]/.test(path)) return undefined;
  return path;
}

/** Whether the subscription machinery may look at this stream at all (never at its own control space). */
export function isApplicationStream(path: string): boolean {
  return path !== RESERVED_SEGMENT && !path.startsWith(`${RESERVED_SEGMENT}/`);
}
