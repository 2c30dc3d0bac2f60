/*
 * The example state app (examples/state-app/, served at /examples/state-app/) in a real
 * headless Chromium (Debian's chromium, driven by playwright-core) against a real
 * server on SQLite: it holds a state stream's state over one WebSocket, resumes from
 * its offset after the network drops, and re-syncs from a key frame after a "gone".
 * The gone path is driven by an inbox with settings.keyFrame and retention.maxEvents
 * whose event bodies are state changes, falling behind retention while it is offline.
 */
import { readFileSync } from "node:fs";
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import { describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { waitUntil } from "./helpers/wait.js";
import { usePageTests } from "./helpers/browser.js";

// A page whose socket drops logs these; anything else on the console is a failure.
const pages = usePageTests(/Failed to load resource|net::ERR|WebSocket connection/);
const JSON_TYPE = { "content-type": "application/json" };

type Change = { type: string; key: string; value?: unknown; headers: { operation: "insert" | "update" | "upsert" | "delete" } };

async function openApp(stream: string, token: string): Promise<Page> {
  const page = await pages.newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(`${pages.proxy.url}/examples/state-app/?stream=${encodeURIComponent(stream)}`);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.locator('#status[data-state="live"]').waitFor();
  return page;
}

/** The rows the page shows, as "type/key" → value JSON. */
async function shownState(page: Page): Promise<Record<string, unknown>> {
  const rows = await page.$$eval("#rows tr", (trs) => trs.map((tr) => [tr.getAttribute("data-key")!, tr.cells[2]!.textContent!]));
  return Object.fromEntries(rows.map(([key, json]) => [key, JSON.parse(json!) as unknown]));
}

function expected(changes: Change[]): Record<string, unknown> {
  const state = new MaterializedState();
  for (const change of changes) state.apply(change as ChangeEvent);
  const flat: Record<string, unknown> = {};
  for (const type of state.types) for (const [key, value] of state.getType(type)) flat[`${type}/${key}`] = value;
  return flat;
}

async function showsState(page: Page, changes: Change[], what: string): Promise<void> {
  const want = expected(changes);
  await waitUntil(async () => JSON.stringify(await shownState(page)) === JSON.stringify(sorted(want)), what);
}

function sorted(state: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(state).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The tab loses its network, and the page says it is reconnecting. */
async function cutTab(page: Page): Promise<void> {
  await pages.cutTab();
  await page.locator('#status[data-state="reconnecting"]').waitFor();
}

const restoreTab = () => pages.restoreTab();

const text = (page: Page, id: string) => page.locator(`#${id}`).textContent();

describe("example state app", () => {
  it("is served at /examples/state-app/ with a strict CSP, and ships @durable-streams/state as published", async () => {
    const index = await fetch(`${pages.server.url}/examples/state-app/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-security-policy")).toMatch(/^default-src 'self'(;|$)/);
    const vendored = await fetch(`${pages.server.url}/examples/state-app/durable-streams-state.js`);
    expect(vendored.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const published = readFileSync(new URL("../node_modules/@durable-streams/state/dist/src-VTyL9Eij.js", import.meta.url));
    expect(Buffer.from(await vendored.arrayBuffer()).equals(published)).toBe(true);
    expect((await fetch(`${pages.server.url}/examples/state-app/..%2Fpackage.json`)).status).toBe(404);
  });

  it("holds a state stream's state from a key frame, shows live changes, and resumes by offset after the network drops", async () => {
    const name = "app/todos";
    expect(
      (await pages.server.admin(`/v1/stream/${name}`, { method: "PUT", headers: { ...JSON_TYPE, "stream-state": "v1" } })).status,
    ).toBe(201);
    const log: Change[] = [];
    const append = async (changes: Change[]) => {
      const response = await pages.server.admin(`/v1/stream/${name}`, {
        method: "POST",
        headers: JSON_TYPE,
        body: JSON.stringify(changes),
      });
      expect(response.status).toBe(204);
      log.push(...changes);
    };
    await append([
      { type: "todo", key: "1", value: { title: "milk" }, headers: { operation: "insert" } },
      { type: "todo", key: "2", value: { title: "eggs" }, headers: { operation: "insert" } },
      { type: "todo", key: "1", value: { title: "oat milk" }, headers: { operation: "update" } },
    ]);
    const page = await openApp(name, pages.server.adminToken);
    await showsState(page, log, "the key frame");

    await append([{ type: "todo", key: "3", value: { title: "bread" }, headers: { operation: "insert" } }]);
    await showsState(page, log, "a live change");

    await cutTab(page);
    await append([
      { type: "todo", key: "2", headers: { operation: "delete" } },
      { type: "user", key: "ann", value: { name: "Ann" }, headers: { operation: "upsert" } },
    ]);
    await restoreTab();
    await page.locator('#status[data-state="live"]').waitFor();
    await showsState(page, log, "the changes made while offline");
    expect(Number(await text(page, "reconnects"))).toBeGreaterThanOrEqual(1);
    expect(await text(page, "resyncs")).toBe("0");
    expect(await text(page, "offset")).toBe(`0000000000000000_${String(log.length).padStart(16, "0")}`);
    await pages.screenshot(page, "state-app-resumed");
  });

  it("re-syncs from a key frame after a gone: an inbox whose events are state changes fell behind retention while offline", async () => {
    const inbox = await pages.server.createInbox({ settings: { keyFrame: { key: ["/key"], type: "/type" }, retention: { maxEvents: 5 } } });
    const log: Change[] = [];
    const ingest = async (change: Change) => {
      const response = await fetch(inbox.ingestUrl, { method: "POST", headers: JSON_TYPE, body: JSON.stringify(change) });
      expect(response.status).toBe(200);
      log.push(change);
    };
    await ingest({ type: "light", key: "hall", value: { on: false }, headers: { operation: "insert" } });
    const page = await openApp(`inbox/${inbox.id}`, inbox.token);
    await showsState(page, log, "the first event");

    await cutTab(page);
    // Twelve events over three keys: retention keeps the last five, which hold every key's latest.
    for (let i = 0; i < 12; i++) {
      await ingest({
        type: "light",
        key: ["hall", "desk", "porch"][i % 3]!,
        value: { on: i % 2 === 0, i },
        headers: { operation: "upsert" },
      });
    }
    await waitUntil(async () => {
      const response = await fetch(`${inbox.streamUrl}?offset=-1`, { headers: { authorization: `Bearer ${inbox.token}` } });
      return response.status === 200 && ((await response.json()) as unknown[]).length === 5;
    }, "retention to leave 5 events");
    await restoreTab();
    await page.locator('#status[data-state="live"]').waitFor();
    await showsState(page, log, "the state re-synced from the key frame");
    expect(await text(page, "resyncs")).toBe("1");

    // Live again after the re-sync.
    await ingest({ type: "light", key: "attic", value: { on: true }, headers: { operation: "insert" } });
    await showsState(page, log, "a live event after the re-sync");
    await pages.screenshot(page, "state-app-resynced");
  });
});
