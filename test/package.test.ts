/*
 * What `npm pack` ships: the file list has the CLI, the docs, README and LICENSE (and
 * nothing of test/ or src/), and the CLI of the packed tarball, unpacked elsewhere,
 * runs. The tarball is packed with --ignore-scripts from the dist/ `npm test` just
 * built: the prepack build itself rewrites dist/, which the other test files are
 * reading at the same time (and a clean-clone pack and install, as the README describes,
 * takes minutes: too slow for every run).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers/processes.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

function npmPack(args: string[]): PackResult {
  const output = execFileSync("npm", ["pack", "--json", "--ignore-scripts", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return (JSON.parse(output) as PackResult[])[0]!;
}

describe("the npm package", { timeout: 120_000 }, () => {
  it("lists the CLI, the docs, README and LICENSE, and no tests or sources", () => {
    const paths = npmPack(["--dry-run"]).files.map((file) => file.path);
    for (const needed of [
      "dist/cli/main.js",
      "dist/index.js",
      "dist/index.d.ts",
      "LICENSE",
      "README.md",
      "docs/cli.md",
      "docs/http-api.md",
      "examples/state-app/index.html",
      "examples/state-app/durable-streams-state.js",
      "package.json",
    ]) {
      expect(paths, needed).toContain(needed);
    }
    expect(paths.filter((path) => path.startsWith("test/") || path.startsWith("src/") || path.startsWith("node_modules/"))).toEqual([]);
  });

  it("declares an MIT LICENSE, a prepack build and the tailhook bin", () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      license: string;
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(manifest.license).toBe("MIT");
    expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} tailhook authors\n/);
    expect(manifest.bin).toEqual({ tailhook: "dist/cli/main.js" });
    expect(manifest.scripts.prepack).toMatch(/npm run build$/);
  });

  it("the packed CLI, unpacked in another folder, prints its version", () => {
    const out = tempDir("tailhook-pack-");
    dirs.push(out);
    const { filename } = npmPack(["--pack-destination", out]);
    execFileSync("tar", ["-xzf", join(out, filename), "-C", out]);
    // The dependencies, as an install would provide them.
    symlinkSync(join(ROOT, "node_modules"), join(out, "package", "node_modules"), "dir");
    mkdirSync(join(out, "home"));
    const run = spawnSync(process.execPath, [join(out, "package", "dist", "cli", "main.js"), "--version"], {
      cwd: join(out, "home"),
      encoding: "utf8",
      env: { PATH: process.env.PATH, HOME: join(out, "home") },
    });
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${version}\n`);
  });
});
