/*
 * The example state app (examples/state-app/, served at /examples/state-app/) in a real
 * headless Chromium (Debian's chromium, driven by playwright-core) against a real
 * server on SQLite: it holds a state stream's state over one WebSocket, resumes from
 * its offset after the network drops, and re-syncs from a key frame after a "gone".
 * No compaction exists in this tree, so the gone path is driven by an inbox with
 * settings.keyFrame and retention.maxEvents whose event bodies are state changes.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { waitUntil } from "./helpers/wait.js";
import { startCuttableProxy, type CuttableProxy } from "./helpers/cuttable-proxy.js";

const CHROMIUM = process.env.TAILHOOK_TEST_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = new URL("../test-artifacts/", import.meta.url);
const JSON_TYPE = { "content-type": "application/json" };

type Change = { type: string; key: string; value?: unknown; headers: { operation: "insert" | "update" | "upsert" | "delete" } };

let server: TestServer;
let proxy: CuttableProxy;
let browser: Browser;
let context: BrowserContext | undefined;
let pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startTestServer({}, { env: { TAILHOOK_PRUNE_INTERVAL_MS: "50" } });
  proxy = await startCuttableProxy(server.url);
  browser = await chromium.launch({ executablePath: CHROMIUM });
});
afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await server?.stop();
});
afterEach(async () => {
  await context?.close();
  context = undefined;
  // A script error or a CSP refusal in the page is a failure, whatever the test looked at.
  expect(pageErrors).toEqual([]);
  pageErrors = [];
});

async function openApp(stream: string, token: string): Promise<Page> {
  context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !/Failed to load resource|net::ERR|WebSocket connection/.test(message.text())) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  await page.goto(`${proxy.url}/examples/state-app/?stream=${encodeURIComponent(stream)}`);
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

/** The tab loses its network: offline, and every open connection dropped. */
async function cutTab(page: Page): Promise<void> {
  await context!.setOffline(true);
  proxy.cut();
  await page.locator('#status[data-state="reconnecting"]').waitFor();
}

async function restoreTab(): Promise<void> {
  proxy.restore();
  await context!.setOffline(false);
}

const text = (page: Page, id: string) => page.locator(`#${id}`).textContent();

describe("example state app", () => {
  it("is served at /examples/state-app/ with a strict CSP, and ships @durable-streams/state as published", async () => {
    const index = await fetch(`${server.url}/examples/state-app/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-security-policy")).toMatch(/^default-src 'self'(;|$)/);
    const vendored = await fetch(`${server.url}/examples/state-app/durable-streams-state.js`);
    expect(vendored.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const published = readFileSync(new URL("../node_modules/@durable-streams/state/dist/src-VTyL9Eij.js", import.meta.url));
    expect(Buffer.from(await vendored.arrayBuffer()).equals(published)).toBe(true);
    expect((await fetch(`${server.url}/examples/state-app/..%2Fpackage.json`)).status).toBe(404);
  });

  it("holds a state stream's state from a key frame, shows live changes, and resumes by offset after the network drops", async () => {
    const name = "app/todos";
    expect((await server.admin(`/v1/stream/${name}`, { method: "PUT", headers: { ...JSON_TYPE, "stream-state": "v1" } })).status).toBe(201);
    const log: Change[] = [];
    const append = async (changes: Change[]) => {
      const response = await server.admin(`/v1/stream/${name}`, { method: "POST", headers: JSON_TYPE, body: JSON.stringify(changes) });
      expect(response.status).toBe(204);
      log.push(...changes);
    };
    await append([
      { type: "todo", key: "1", value: { title: "milk" }, headers: { operation: "insert" } },
      { type: "todo", key: "2", value: { title: "eggs" }, headers: { operation: "insert" } },
      { type: "todo", key: "1", value: { title: "oat milk" }, headers: { operation: "update" } },
    ]);
    const page = await openApp(name, server.adminToken);
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
    await page.screenshot({ path: new URL("state-app-resumed.png", ARTIFACTS).pathname, fullPage: true });
  });

  it("re-syncs from a key frame after a gone: an inbox whose events are state changes fell behind retention while offline", async () => {
    const inbox = await server.createInbox({ settings: { keyFrame: { key: ["/key"], type: "/type" }, retention: { maxEvents: 5 } } });
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
    await page.screenshot({ path: new URL("state-app-resynced.png", ARTIFACTS).pathname, fullPage: true });
  });
});
