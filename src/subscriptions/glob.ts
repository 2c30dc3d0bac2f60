/*
 * Subscription patterns select general streams by path. Wildcards are whole segments
 * only, so "events/*" never surprises anyone by matching "events/a/b": `*` is exactly
 * one segment, `**` zero or more. Any other segment, "a*" included, is literal.
 */

export function matchGlob(pattern: string, path: string): boolean {
  return matchSegments(pattern.split("/"), 0, path.split("/"), 0);
}

function matchSegments(pattern: string[], p: number, path: string[], s: number): boolean {
  while (p < pattern.length) {
    const segment = pattern[p]!;
    if (segment === "**") {
      // Collapse runs of "**" so that "**/**/x" costs no more than "**/x".
      while (pattern[p + 1] === "**") p++;
      if (p === pattern.length - 1) return true;
      for (let skip = s; skip <= path.length; skip++) {
        if (matchSegments(pattern, p + 1, path, skip)) return true;
      }
      return false;
    }
    if (s >= path.length) return false;
    if (segment !== "*" && segment !== path[s]) return false;
    p++;
    s++;
  }
  return s === path.length;
}
