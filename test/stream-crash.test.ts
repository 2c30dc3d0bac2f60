/*
 * Durability of general streams under SIGKILL, with real processes: idempotent
 * producers append JSON to one stream of a `tailhook serve --open` child, which is
 * killed mid-load. After a restart on the same data folder, every acknowledged append
 * is there exactly once, each producer's messages are in order, and retrying each
 * producer's last unanswered request is deduplicated (producer state and data commit
 * in one transaction), so the final stream holds every message exactly once.
 */
import { Agent, request } from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { killAllChildren, startServerProcess, tempDir } from "./helpers/processes.js";

const WRITERS = 8;
const SECONDS_BEFORE_KILL = 2;

interface Message {
  w: number;
  n: number;
  pad: string;
}

function append(agent: Agent, url: string, writer: number, n: number): Promise<number> {
  const body = JSON.stringify({ w: writer, n, pad: "x".repeat((n * 37) % 300) } satisfies Message);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        timeout: 5000,
        headers: {
          "content-type": "application/json",
          "producer-id": `writer-${writer}`,
          "producer-epoch": "0",
          "producer-seq": String(n),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

async function readAll(url: string): Promise<Message[]> {
  const messages: Message[] = [];
  let offset = "-1";
  for (;;) {
    const response = await fetch(`${url}?offset=${offset}`);
    expect(response.status).toBe(200);
    messages.push(...((await response.json()) as Message[]));
    if (response.headers.get("stream-up-to-date") === "true") return messages;
    offset = response.headers.get("stream-next-offset")!;
  }
}

afterAll(async () => {
  await killAllChildren();
});

describe("general streams under SIGKILL", () => {
  it("keep every acknowledged append exactly once, and producer retries after the crash deduplicate", async () => {
    const dataDir = tempDir("tailhook-stream-crash-");
    const first = await startServerProcess({ dataDir, args: ["--open"] });
    const url = `${first.url}/v1/stream/crash/orders`;
    expect((await fetch(url, { method: "PUT", headers: { "content-type": "application/json" } })).status).toBe(201);

    const agent = new Agent({ keepAlive: true, maxSockets: WRITERS });
    const acked: number[][] = Array.from({ length: WRITERS }, () => []);
    /** Each writer's next seq: the one in flight (or about to be) when the server died. */
    const nextSeq = new Array<number>(WRITERS).fill(0);
    let killed = false;
    const writer = async (w: number) => {
      while (!killed) {
        const status = await append(agent, url, w, nextSeq[w]!).catch(() => 0);
        if (status === 0) return;
        expect(status).toBe(200);
        acked[w]!.push(nextSeq[w]!);
        nextSeq[w]!++;
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    // Chaos timing: the writers run this long, then the server is killed mid-write.
    await new Promise((resolve) => setTimeout(resolve, SECONDS_BEFORE_KILL * 1000));
    killed = true;
    expect((await first.kill("SIGKILL")).signal).toBe("SIGKILL");
    await Promise.all(writers);
    agent.destroy();

    const second = await startServerProcess({ dataDir, port: first.port, args: ["--open"] });
    const stored = await readAll(url);
    const totalAcked = acked.reduce((sum, list) => sum + list.length, 0);
    expect(totalAcked).toBeGreaterThan(WRITERS * 10);
    for (let w = 0; w < WRITERS; w++) {
      const mine = stored.filter((message) => message.w === w).map((message) => message.n);
      // In order, no duplicates, every ack present; at most the one unanswered request beyond them.
      expect(mine).toEqual([...Array(mine.length).keys()]);
      expect(mine.length - acked[w]!.length).toBeGreaterThanOrEqual(0);
      expect(mine.length - acked[w]!.length).toBeLessThanOrEqual(1);
    }

    // Each writer retries its unanswered request: 200 if it was lost, 204 if it had committed.
    const retryAgent = new Agent({ keepAlive: true });
    for (let w = 0; w < WRITERS; w++) {
      const committed = stored.some((message) => message.w === w && message.n === nextSeq[w]);
      expect(await append(retryAgent, url, w, nextSeq[w]!)).toBe(committed ? 204 : 200);
    }
    retryAgent.destroy();
    const final = await readAll(url);
    for (let w = 0; w < WRITERS; w++) {
      expect(final.filter((message) => message.w === w).map((message) => message.n)).toEqual([...Array(nextSeq[w]! + 1).keys()]);
    }
    await second.kill("SIGTERM");
  });
});
