/*
 * The cost of one signature check, apart from the server: `verifyRequest` on the github
 * scheme (HMAC-SHA256 of a 1 KiB body) against `createHmac` alone and two ways of
 * building RFC 2104 from hashes whose padded-key states are computed once per secret
 * (`hash.copy()`, and two `crypto.hash` one-shots). Run on its own, not by run.ts:
 * `node dist-bench/bench/verify-micro.js`. Times are this process's CPU time
 * (process.cpuUsage), which other processes on a shared machine disturb less than the
 * clock; the variants take turns, and each figure is the median of the rounds.
 */
import { createHash, createHmac, hash, randomBytes } from "node:crypto";
import { verifyRequest, type VerifySettings } from "../src/core/verify/index.js";

const CALLS = 200_000;
const ROUNDS = 7;
const BLOCK = 64;
const DIGEST = 32;

const secret = randomBytes(20).toString("hex");
const key = Buffer.from(secret, "utf8");
const body = Buffer.from(JSON.stringify({ event: "push", pad: "x".repeat(1024) }).slice(0, 1024), "utf8");
const settings: VerifySettings = { scheme: "github", secrets: [secret], mode: "enforce", toleranceSeconds: 300 };
const signature = `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;
const input = {
  rawHeaders: ["Host", "127.0.0.1:8080", "Content-Type", "application/json", "Content-Length", "1024", "X-Hub-Signature-256", signature],
  body,
  receivedAt: Date.now(),
};

// The key is shorter than a block here, so it is padded, not hashed first.
const innerPad = Buffer.alloc(BLOCK);
const outerPad = Buffer.alloc(BLOCK);
for (let i = 0; i < BLOCK; i++) {
  innerPad[i] = (key[i] ?? 0) ^ 0x36;
  outerPad[i] = (key[i] ?? 0) ^ 0x5c;
}
const innerState = createHash("sha256").update(innerPad);
const outerState = createHash("sha256").update(outerPad);

const variants: Record<string, () => unknown> = {
  "verifyRequest (github)": () => verifyRequest(settings, input),
  "createHmac alone": () => createHmac("sha256", key).update(body).digest(),
  "RFC 2104, hash.copy() of padded states": () => outerState.copy().update(innerState.copy().update(body).digest()).digest(),
  "RFC 2104, two crypto.hash one-shots": () => {
    const inner = hash("sha256", Buffer.concat([innerPad, body]), "buffer") as unknown as Buffer;
    const outer = Buffer.allocUnsafe(BLOCK + DIGEST);
    outerPad.copy(outer);
    inner.copy(outer, BLOCK);
    return hash("sha256", outer, "buffer");
  },
};

function cpuMicrosPerCall(run: () => unknown): number {
  const start = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / CALLS;
}

const expected = createHmac("sha256", key).update(body).digest();
for (const [name, run] of Object.entries(variants).slice(2)) {
  if (!expected.equals(run() as Buffer)) throw new Error(`${name} does not give createHmac's digest`);
}
if (verifyRequest(settings, input).ok !== true) throw new Error("the github check does not verify its own signature");

const samples = new Map<string, number[]>(Object.keys(variants).map((name) => [name, []]));
for (const run of Object.values(variants)) cpuMicrosPerCall(run); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(variants)) samples.get(name)!.push(cpuMicrosPerCall(run));
}
console.log(`Node ${process.version}, ${CALLS} calls x ${ROUNDS} rounds, 1 KiB body, CPU µs per call (median, min)`);
for (const [name, values] of samples) {
  values.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)} ${values[Math.floor(values.length / 2)]!.toFixed(2)}  ${values[0]!.toFixed(2)}`);
}
