/*
 * Durability under SIGKILL, with real processes: a `tailhook serve` child takes
 * concurrent webhooks (binary and text bodies of random sizes) and is killed while
 * requests are in flight; a new child on the same data folder must then hold every
 * acknowledged event byte for byte at the seq its ack named, with gapless seqs and
 * nothing that was never sent. Two kill rounds, with more load in between. Some bodies
 * are large enough for a file of their own (storage/sqlite/body-files.ts): each stored
 * one must have its file, and no file may outlive the crash without its event.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "node:http";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createInbox, killAllChildren, startServerProcess, tempDir, type ServerProcess } from "./helpers/processes.js";
import type { EventEnvelope } from "../dist/core/types.js";
import { LARGE_BODY_BYTES } from "../dist/storage/sqlite/body-files.js";

const LOOPS = 16;
const MAX_BODY = 8 * 1024;

interface Sent {
  tag: string;
  body: Buffer;
  contentType: string;
}

interface Ack {
  tag: string;
  seq: number;
  id: string;
  body: Buffer;
}

type Envelope = EventEnvelope;

const TEXT_PIECES = ["a", "Z", " ", "\n", "{", '"', "é", "ß", "€", "中", "日本", "😀", "\u0000", "\u007f", "\ufeff"];

/** Bodies that stress the UTF-8/base64 split: random bytes, real text, and nasty edges. */
function randomBody(): { body: Buffer; contentType: string } {
  if (Math.random() < 0.05)
    return { body: randomBytes(LARGE_BODY_BYTES + Math.floor(Math.random() * 512 * 1024)), contentType: "application/octet-stream" };
  const size = Math.floor(Math.random() * (MAX_BODY + 1));
  const kind = Math.random();
  if (kind < 0.4) return { body: randomBytes(size), contentType: "application/octet-stream" };
  if (kind < 0.75) {
    let text = "";
    while (Buffer.byteLength(text) < size) text += TEXT_PIECES[Math.floor(Math.random() * TEXT_PIECES.length)];
    return { body: Buffer.from(text, "utf8"), contentType: "text/plain; charset=utf-8" };
  }
  const edges = [
    Buffer.alloc(0),
    Buffer.from([0xff]),
    Buffer.from([0xc0, 0xaf]), // overlong "/"
    Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate encoded as UTF-8
    Buffer.concat([Buffer.from("valid text then a cut-off euro: "), Buffer.from([0xe2, 0x82])]),
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("BOM first")]),
    Buffer.from(JSON.stringify({ n: Math.random(), s: "x".repeat(size % 500) })),
    Buffer.alloc(size, 0),
  ];
  return { body: edges[Math.floor(Math.random() * edges.length)]!, contentType: "application/json" };
}

function post(agent: Agent, url: URL, body: Buffer, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": contentType, "content-length": body.length },
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
        res.on("aborted", () => reject(new Error("response aborted")));
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

interface LoadResult {
  acks: Ack[];
  sent: Map<string, Sent>;
  inFlightAtKill: number;
  failuresBeforeKill: string[];
}

/**
 * Runs LOOPS concurrent keep-alive ingest loops against the server, SIGKILLs it after
 * `durationMs` without stopping them, and returns once every loop saw its last reply
 * or error.
 */
async function loadThenKill(server: ServerProcess, inboxId: string, round: number, durationMs: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: LOOPS });
  const acks: Ack[] = [];
  const sent = new Map<string, Sent>();
  const failuresBeforeKill: string[] = [];
  let killed = false;
  let inFlight = 0;

  const loop = async (index: number) => {
    for (let n = 0; !killed; n++) {
      const tag = `r${round}-l${index}-n${n}`;
      const { body, contentType } = randomBody();
      sent.set(tag, { tag, body, contentType });
      const url = new URL(`${server.url}/h/${inboxId}/round-${round}/loop-${index}?tag=${tag}`);
      inFlight++;
      try {
        const reply = await post(agent, url, body, contentType);
        if (reply.status >= 200 && reply.status < 300) {
          const ack = JSON.parse(reply.text) as { ok: boolean; id: string; seq: number };
          expect(ack.ok).toBe(true);
          acks.push({ tag, seq: ack.seq, id: ack.id, body });
        } else if (!killed) {
          failuresBeforeKill.push(`${tag}: HTTP ${reply.status} ${reply.text}`);
        }
      } catch (error) {
        if (!killed) failuresBeforeKill.push(`${tag}: ${(error as Error).message}`);
      } finally {
        inFlight--;
      }
    }
  };

  const loops = Array.from({ length: LOOPS }, (_, index) => loop(index));
  // Chaos timing: the load runs this long, then the server is killed mid-load.
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  killed = true;
  const inFlightAtKill = inFlight;
  const exit = await server.kill("SIGKILL");
  expect(exit.signal).toBe("SIGKILL");
  await Promise.all(loops);
  agent.destroy();
  return { acks, sent, inFlightAtKill, failuresBeforeKill };
}

/** Reads the whole stream page by page, following Stream-Next-Offset to the end. */
async function readAllEvents(server: ServerProcess, inboxId: string, token: string): Promise<Envelope[]> {
  const events: Envelope[] = [];
  let offset = "-1";
  for (let page = 0; ; page++) {
    expect(page).toBeLessThan(10_000);
    const response = await fetch(`${server.url}/v1/stream/inbox/${inboxId}?offset=${offset}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const batch = (await response.json()) as Envelope[];
    expect(batch.length).toBeLessThanOrEqual(1000);
    events.push(...batch);
    const next = response.headers.get("stream-next-offset") ?? "";
    expect(next).toMatch(/^\d{16}_\d{16}$/);
    if (batch.length > 0) expect(Number(next.split("_")[1])).toBe(batch.at(-1)!.seq);
    if (response.headers.get("stream-up-to-date") === "true") break;
    expect(batch.length).toBeGreaterThan(0);
    offset = next!;
  }
  return events;
}

function bodyOf(envelope: Envelope): Buffer {
  return Buffer.from(envelope.body, envelope.bodyEncoding === "utf8" ? "utf8" : "base64");
}

/** Everything the restarted server must show for the acks (and sends) so far. */
async function verify(server: ServerProcess, inboxId: string, token: string, acks: Ack[], sent: Map<string, Sent>) {
  const events = await readAllEvents(server, inboxId, token);
  const total = events.length;

  // Acks name distinct seqs, and each is present byte for byte where its ack said.
  expect(new Set(acks.map((ack) => ack.seq)).size).toBe(acks.length);
  const bySeq = new Map(events.map((event) => [event.seq, event]));
  const missing: string[] = [];
  for (const ack of acks) {
    const event = bySeq.get(ack.seq);
    if (!event) {
      missing.push(`${ack.tag} (seq ${ack.seq}): no such event`);
      continue;
    }
    if (event.id !== ack.id || event.query !== `tag=${ack.tag}` || !bodyOf(event).equals(ack.body)) {
      missing.push(`${ack.tag} (seq ${ack.seq}): stored ${event.id} ${event.query} ${event.size} B, acked ${ack.id} ${ack.body.length} B`);
    }
  }
  expect(missing).toEqual([]);

  // Gapless 1..N, and the inbox's own idea of its tail agrees.
  const outOfPlace = events.filter((event, index) => event.seq !== index + 1).slice(0, 5);
  expect(outOfPlace.map((event) => `seq ${event.seq} at position ${events.indexOf(event) + 1}`)).toEqual([]);
  const info = (await (await fetch(`${server.url}/api/inboxes/${inboxId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
    lastSeq: number;
  };
  expect(info.lastSeq).toBe(total);
  expect(total).toBeGreaterThanOrEqual(acks.length);

  // Nothing stored that was never sent, nothing stored twice, and unacked-but-committed
  // requests are still exact.
  const seenTags = new Set<string>();
  for (const event of events) {
    const tag = event.query.replace(/^tag=/, "");
    const request = sent.get(tag);
    expect(request, `stored event ${event.seq} has unknown tag ${tag}`).toBeDefined();
    expect(seenTags.has(tag), `request ${tag} stored twice`).toBe(false);
    seenTags.add(tag);
    expect(bodyOf(event).equals(request!.body)).toBe(true);
    expect(event.size).toBe(request!.body.length);
    expect(event.method).toBe("POST");
  }

  // The raw body endpoint returns the same bytes (sample, binary ones included).
  const sample = [...acks].sort(() => Math.random() - 0.5).slice(0, 25);
  await Promise.all(
    sample.map(async (ack) => {
      const response = await fetch(`${server.url}/api/inboxes/${inboxId}/events/${ack.seq}/body`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(ack.body)).toBe(true);
    }),
  );
  return events;
}

/** The seqs of the body files in the data folder (this test's one inbox is the only stream with events). */
function bodyFileSeqs(dataDir: string): number[] {
  const folder = join(dataDir, "bodies");
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .flatMap((stream) => readdirSync(join(folder, stream)).map(Number))
    .sort((a, b) => a - b);
}

describe("durability under SIGKILL", () => {
  const dirs: string[] = [];

  afterEach(async () => {
    await killAllChildren();
  });
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps every acknowledged webhook, byte for byte and gapless, across two kills", async () => {
    const dataDir = tempDir("tailhook-crash-");
    dirs.push(dataDir);

    const first = await startServerProcess({ dataDir });
    const inbox = await createInbox(first);

    // Round 1: load, kill mid-flight, restart on the same folder.
    const round1 = await loadThenKill(first, inbox.id, 1, 1000 + Math.random() * 800);
    expect(round1.failuresBeforeKill).toEqual([]);
    expect(round1.inFlightAtKill).toBeGreaterThan(0);
    expect(round1.acks.length).toBeGreaterThan(50);

    const second = await startServerProcess({ dataDir });
    expect(second.adminToken).toBe(first.adminToken);
    expect(second.stderr.text).not.toContain("created the admin token");
    const afterRound1 = await verify(second, inbox.id, inbox.token, round1.acks, round1.sent);
    // The test means something only if it really covered both encodings.
    expect(afterRound1.some((event) => event.bodyEncoding === "base64")).toBe(true);
    expect(afterRound1.some((event) => event.bodyEncoding === "utf8" && event.size > 0)).toBe(true);

    // Round 2: more load on the restarted server, kill again, restart again.
    const round2 = await loadThenKill(second, inbox.id, 2, 800 + Math.random() * 600);
    expect(round2.failuresBeforeKill).toEqual([]);
    expect(round2.inFlightAtKill).toBeGreaterThan(0);
    expect(round2.acks.length).toBeGreaterThan(50);
    expect(Math.min(...round2.acks.map((ack) => ack.seq))).toBeGreaterThan(afterRound1.length);

    const third = await startServerProcess({ dataDir });
    // The admin token still works after two crashes (it is read from the same file).
    expect(third.adminToken).toBe(first.adminToken);
    const allAcks = [...round1.acks, ...round2.acks];
    const allSent = new Map([...round1.sent, ...round2.sent]);
    const events = await verify(third, inbox.id, third.adminToken, allAcks, allSent);

    // Round 1's events are untouched by round 2 and the second crash.
    expect(events.slice(0, afterRound1.length)).toEqual(afterRound1);
    // Every stored large body has its file, and no file is left of a request the crash cut short.
    const large = events.filter((event) => event.size >= LARGE_BODY_BYTES).map((event) => event.seq);
    expect(large.length).toBeGreaterThan(0);
    expect(bodyFileSeqs(dataDir)).toEqual(large);

    // And the twice-restarted server still takes webhooks, right after the last seq.
    const response = await fetch(`${third.url}/h/${inbox.id}/after`, { method: "POST", body: "still here" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { seq: number }).seq).toBe(events.length + 1);
  }, 30_000);
});
