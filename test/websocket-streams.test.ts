/*
 * /v1/ws/stream/<name> on the store under test (both, see vitest.config.ts): every kind
 * of stream over one socket — JSON, bytes, a state stream from offset=snapshot then its
 * live deltas (no gap, no repeat, with appends running during the snapshot), an inbox's
 * stream — authorized like the HTTP reads, resumed by offset, and "gone" (with the
 * earliest offset and a snapshot hint) for a reader behind retention.
 */
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitUntil } from "./helpers/wait.js";
import { refusedUpgrade, StreamReader, type StreamFrame } from "./helpers/ws-reader.js";
import { stripeEvent } from "./helpers/webhook-payloads.js";

type Change = { type?: string; key?: string; value?: unknown; headers: { operation?: string; control?: string; offset?: string } };

const JSON_TYPE = { "content-type": "application/json" };
const seqOf = (offset: string) => Number(offset.split("_")[1]);
const offset = (seq: number) => `0000000000000000_${String(seq).padStart(16, "0")}`;

function materialize(messages: Change[]): Record<string, unknown> {
  const state = new MaterializedState();
  for (const message of messages) if (message.headers.operation !== undefined) state.apply(message as ChangeEvent);
  const flat: Record<string, unknown> = {};
  for (const type of state.types) for (const [key, value] of state.getType(type)) flat[`${type}/${key}`] = value;
  return flat;
}

let server: TestServer;
const readers: StreamReader[] = [];

function wsUrl(path: string, query: string): string {
  return `${server.url.replace(/^http/, "ws")}/v1/ws/stream/${path}?${query}`;
}
function connect(path: string, query: string, token: string | undefined = server.adminToken): StreamReader {
  const reader = new StreamReader(wsUrl(path, token === undefined ? query : `${query}&token=${token}`));
  readers.push(reader);
  return reader;
}
const put = (name: string, headers: Record<string, string>) => server.admin(`/v1/stream/${name}`, { method: "PUT", headers });
async function post(name: string, body: string | Buffer, headers: Record<string, string> = JSON_TYPE): Promise<void> {
  const response = await server.admin(`/v1/stream/${name}`, { method: "POST", headers, body });
  expect(response.status, await response.clone().text()).toBe(204);
}
const changes = (list: Change[]) => JSON.stringify(list);
const upsert = (key: string, value: unknown): Change => ({ type: "item", key, value, headers: { operation: "upsert" } });

beforeAll(async () => {
  server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
});
afterAll(async () => {
  for (const reader of readers) reader.socket.terminate();
  await server.stop();
});

describe("WebSocket streams", () => {
  it("a JSON stream: each message as JSON with its offset, up-to-date, then live messages; closed at the end", async () => {
    expect((await put("ws/json", JSON_TYPE)).status).toBe(201);
    await post("ws/json", JSON.stringify([{ a: 1 }, { a: "two" }]));
    const reader = connect("ws/json", "offset=-1");
    await reader.until((r) => r.of("up-to-date").length === 1, "up-to-date");
    expect(reader.of("message")).toEqual([
      { type: "message", offset: offset(1), message: { a: 1 } },
      { type: "message", offset: offset(2), message: { a: "two" } },
    ]);
    expect(reader.of("up-to-date")[0]!.offset).toBe(offset(2));
    await post("ws/json", JSON.stringify({ a: [3] }));
    await reader.until((r) => r.of("message").length === 3, "the live message");
    expect(reader.of("message")[2]).toEqual({ type: "message", offset: offset(3), message: { a: [3] } });
    await server.admin("/v1/stream/ws/json", { method: "POST", headers: { ...JSON_TYPE, "stream-closed": "true" } });
    await reader.until((r) => r.closed !== undefined, "the close");
    expect(reader.frames.at(-1)).toEqual({ type: "closed", offset: offset(3) });
    expect(reader.closed).toEqual({ code: 1000, reason: "stream closed" });
  });

  it("a bytes stream sends bodies in base64, a text stream in UTF-8", async () => {
    expect((await put("ws/bytes", { "content-type": "application/octet-stream" })).status).toBe(201);
    await post("ws/bytes", Buffer.from([0, 255, 1]), { "content-type": "application/octet-stream" });
    expect((await put("ws/text", { "content-type": "text/plain" })).status).toBe(201);
    await post("ws/text", "héllo", { "content-type": "text/plain" });
    const bytes = connect("ws/bytes", "offset=-1");
    const text = connect("ws/text", "offset=-1");
    await bytes.until((r) => r.of("up-to-date").length === 1, "bytes up-to-date");
    await text.until((r) => r.of("up-to-date").length === 1, "text up-to-date");
    expect(bytes.of("message")).toEqual([{ type: "message", offset: offset(1), body: "AP8B", bodyEncoding: "base64" }]);
    expect(text.of("message")).toEqual([{ type: "message", offset: offset(1), body: "héllo", bodyEncoding: "utf8" }]);
  });

  it("a state stream from offset=snapshot: the snapshot pages as of X, then the deltas after X, no gap, no repeat, while appends go on", async () => {
    expect((await put("ws/state", { ...JSON_TYPE, "stream-state": "v1" })).status).toBe(201);
    // More keys than one snapshot page holds (1000), so the snapshot comes in several frames.
    const initial = Array.from({ length: 2500 }, (_, i) => upsert(`k${i}`, { n: i }));
    for (let i = 0; i < initial.length; i += 500) await post("ws/state", changes(initial.slice(i, i + 500)));
    const reader = connect("ws/state", "offset=snapshot");
    // Appends race the snapshot: updates, deletes and new keys.
    const concurrent: Change[][] = Array.from({ length: 20 }, (_, round) => [
      upsert(`k${round * 7}`, { n: -1 - round }),
      { type: "item", key: `k${round * 11 + 1}`, headers: { operation: "delete" } },
      { type: "item", key: `new${round}`, value: { round }, headers: { operation: "insert" } },
    ]);
    for (const batch of concurrent) await post("ws/state", changes(batch));
    const tailSeq = initial.length + concurrent.flat().length;
    await reader.until((r) => r.of("message").at(-1)?.offset === offset(tailSeq) && r.of("up-to-date").length > 0, "the tail");

    const pages = reader.of("snapshot");
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.slice(0, -1).every((page) => page.done === false && page.nextOffset!.startsWith("snapshot:"))).toBe(true);
    const asOf = pages[0]!.offset!;
    expect(pages.at(-1)).toMatchObject({ done: true, nextOffset: asOf });
    const snapshot = pages.flatMap((page) => page.messages as Change[]);
    expect(snapshot[0]).toEqual({ headers: { control: "snapshot-start", offset: asOf } });
    expect(snapshot.at(-1)).toEqual({ headers: { control: "snapshot-end", offset: asOf } });
    // The deltas start right after X and are contiguous to the tail: no gap, no repeat.
    const deltas = reader.of("message");
    expect(deltas.map((frame) => seqOf(frame.offset!))).toEqual(
      Array.from({ length: tailSeq - seqOf(asOf) }, (_, i) => seqOf(asOf) + 1 + i),
    );
    // Snapshot then deltas is the state of the whole log.
    const log = [...initial, ...concurrent.flat()];
    expect(materialize([...snapshot, ...deltas.map((frame) => frame.message as Change)])).toEqual(materialize(log));
    // And the snapshot alone is the log's state as of X.
    expect(materialize(snapshot)).toEqual(materialize(log.slice(0, seqOf(asOf))));
  });

  it("an inbox's stream, as inbox/<id>, with the inbox's token: event envelopes as messages", async () => {
    const inbox = await server.createInbox();
    expect((await fetch(inbox.ingestUrl, { method: "POST", headers: JSON_TYPE, body: '{"hello":1}' })).status).toBe(200);
    const reader = connect(`inbox/${inbox.id}`, "offset=-1", inbox.token);
    await reader.until((r) => r.of("up-to-date").length === 1, "up-to-date");
    const [frame] = reader.of("message");
    expect(frame).toMatchObject({ type: "message", offset: offset(1), message: { seq: 1, body: '{"hello":1}', bodyEncoding: "utf8" } });
  });

  it("refuses what the HTTP read refuses, before the upgrade: no token, a token for other streams, a bad offset, no such stream", async () => {
    expect((await put("ws/private/a", JSON_TYPE)).status).toBe(201);
    const grant = await server.admin("/api/stream-tokens", {
      method: "POST",
      headers: JSON_TYPE,
      body: JSON.stringify({ prefix: "ws/other" }),
    });
    const { token } = (await grant.json()) as { token: string };
    expect(await refusedUpgrade(wsUrl("ws/private/a", "offset=-1"))).toEqual({ status: 401, code: "unauthorized" });
    expect(await refusedUpgrade(wsUrl("ws/private/a", `offset=-1&token=${token}`))).toEqual({ status: 401, code: "unauthorized" });
    expect(await refusedUpgrade(wsUrl("ws/private/a", `offset=nonsense&token=${server.adminToken}`))).toMatchObject({ status: 400 });
    expect(await refusedUpgrade(wsUrl("ws/json", `offset=snapshot&token=${server.adminToken}`))).toMatchObject({ status: 400 });
    expect(await refusedUpgrade(wsUrl("ws/absent", `offset=-1&token=${server.adminToken}`))).toEqual({ status: 404, code: "not_found" });
    const inbox = await server.createInbox();
    const other = await server.createInbox();
    expect(await refusedUpgrade(wsUrl(`inbox/${inbox.id}`, `offset=-1&token=${other.token}`))).toEqual({
      status: 401,
      code: "unauthorized",
    });
    // A read token within its prefix is let in.
    expect((await put("ws/other/b", JSON_TYPE)).status).toBe(201);
    const reader = connect("ws/other/b", "offset=-1", token);
    await reader.until((r) => r.of("up-to-date").length === 1, "up-to-date with a stream token");
  });

  it("resumes after a dropped connection from the last offset seen, and a snapshot from its cursor", async () => {
    expect((await put("ws/resume", JSON_TYPE)).status).toBe(201);
    await post("ws/resume", JSON.stringify([1, 2, 3]));
    const first = connect("ws/resume", "offset=-1");
    await first.until((r) => r.of("message").length === 3, "three messages");
    first.socket.terminate();
    await post("ws/resume", JSON.stringify([4, 5]));
    const second = connect("ws/resume", `offset=${first.resumeOffset}`);
    await second.until((r) => r.of("up-to-date").length === 1, "up-to-date");
    expect(second.of("message").map((frame) => frame.message)).toEqual([4, 5]);

    // A snapshot dropped after its first page resumes from that page's cursor.
    const state = connect("ws/state", "offset=snapshot");
    await state.until((r) => r.of("snapshot").length >= 1, "a snapshot page");
    state.socket.terminate();
    const cursor = state.of("snapshot")[0]!.nextOffset!;
    expect(cursor.startsWith("snapshot:")).toBe(true);
    const rest = connect("ws/state", `offset=${encodeURIComponent(cursor)}`);
    await rest.until((r) => r.of("up-to-date").length === 1, "the rest of the snapshot");
    const restPages = rest.of("snapshot");
    expect(restPages.at(-1)!.done).toBe(true);
    const keys = [state.of("snapshot")[0]!, ...restPages].flatMap((page) =>
      (page.messages as Change[]).map((m) => m.key ?? m.headers.control),
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("says gone, with the earliest offset and a snapshot hint, to a reader behind an inbox's retention; the hint re-syncs it", async () => {
    const inbox = await server.createInbox({ settings: { retention: { maxEvents: 3 }, keyFrame: { preset: "stripe" } } });
    for (let i = 0; i < 10; i++) {
      const body = stripeEvent("customer.updated", { id: `cus_${i % 4}`, object: "customer", n: i });
      expect((await fetch(inbox.ingestUrl, { method: "POST", headers: JSON_TYPE, body })).status).toBe(200);
    }
    await waitUntil(async () => {
      const response = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: { authorization: `Bearer ${inbox.token}` } });
      return response.status === 200 && ((await response.json()) as unknown[]).length === 3;
    }, "retention to leave 3 events");
    const behind = connect(`inbox/${inbox.id}`, `offset=${offset(2)}`, inbox.token);
    await behind.until((r) => r.closed !== undefined, "the close");
    const path = `/v1/ws/stream/inbox/${inbox.id}?offset=snapshot`;
    expect(behind.frames).toEqual([{ type: "gone", earliestOffset: offset(7), snapshot: path }]);
    expect(behind.closed!.code).toBe(4410);

    const resync = new StreamReader(`${server.url.replace(/^http/, "ws")}${path}&token=${inbox.token}`);
    readers.push(resync);
    await resync.until((r) => r.of("up-to-date").length === 1, "the snapshot");
    const snapshot = resync.of("snapshot").flatMap((page) => page.messages as Array<{ seq?: number }>);
    // The latest retained event per customer as of X: events 8-10 (cus_3, cus_0, cus_1); cus_2's latest (7) was
    // lost to retention, which without compaction keeps no latest-per-entity.
    const seqs = snapshot.filter((m) => m.seq !== undefined).map((m) => m.seq!);
    expect(seqs.sort((a, b) => a - b)).toEqual([8, 9, 10]);

    // A stream without key frames says gone without a hint.
    const plain = await server.createInbox({ settings: { retention: { maxEvents: 1 } } });
    for (let i = 0; i < 3; i++) await fetch(plain.ingestUrl, { method: "POST", body: `${i}` });
    await waitUntil(async () => {
      const response = await fetch(`${plain.streamUrl}?offset=-1`, { headers: { authorization: `Bearer ${plain.token}` } });
      return response.status === 200 && ((await response.json()) as unknown[]).length === 1;
    }, "retention to leave 1 event");
    const gone = connect(`inbox/${plain.id}`, `offset=${offset(1)}`, plain.token);
    await gone.until((r) => r.closed !== undefined, "the close");
    expect(gone.frames).toEqual([{ type: "gone", earliestOffset: offset(2) } satisfies StreamFrame]);
  });
});
