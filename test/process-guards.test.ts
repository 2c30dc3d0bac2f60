/*
 * The process guard (src/process-guards.ts) in a real child process: the PostgreSQL
 * client's known harmless timer error is let pass, any other uncaught error still ends
 * the process with exit code 1 and its stack on stderr.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const guards = fileURLToPath(new URL("../dist/process-guards.js", import.meta.url));
const trouble = fileURLToPath(new URL("../dist/storage/postgres/write-trouble.js", import.meta.url));

function run(body: string) {
  const script = `
    const { guardProcessErrors } = await import(${JSON.stringify(guards)});
    const { isKnownClientWriteBug } = await import(${JSON.stringify(trouble)});
    const warnings = [];
    guardProcessErrors({ isIgnorableProcessError: isKnownClientWriteBug }, { warn: (_, message) => warnings.push(message) });
    ${body}
  `;
  return spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
}

// The shape porsager/postgres throws from its deferred write (connection.js nextWrite).
const clientBug = `
  const error = new TypeError("Cannot read properties of null (reading 'write')");
  error.stack = error.message + "\\n    at nextWrite (/app/node_modules/postgres/src/connection.js:255:24)\\n    at process.processImmediate (node:internal/timers:483:21)";
`;

describe("process guard", () => {
  it("lets the client's known timer error pass and keeps running", () => {
    const result = run(`${clientBug}
      setImmediate(() => { throw error; });
      // Queued after the throw: runs only if the process survived it.
      setImmediate(() => setImmediate(() => console.log("still running, warned: " + warnings.length)));`);
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe("still running, warned: 1");
  });

  it("ends the process on any other uncaught error, the same message from our own code included", () => {
    const other = run(`setImmediate(() => { throw new TypeError("not the client bug"); });
      setImmediate(() => setImmediate(() => console.log("should not print")));`);
    expect(other.status).toBe(1);
    expect(other.stdout).toBe("");
    expect(other.stderr).toContain("not the client bug");
    const ownCode = run(`setImmediate(() => { null.write; });
      setImmediate(() => setImmediate(() => console.log("should not print")));`);
    expect(ownCode.status).toBe(1);
    expect(ownCode.stderr).toContain("Cannot read properties of null (reading 'write')");
  });
});
