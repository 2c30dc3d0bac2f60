/*
 * Page tests in a real headless Chromium (Debian's chromium, driven by playwright-core)
 * against a real server on SQLite, reached through a proxy a test can cut. One server,
 * proxy and browser per file; one browser context per test, closed after it; a script
 * error, a CSP refusal or an unexpected console error in any page fails the test.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { mkdirSync } from "node:fs";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from "playwright-core";
import { startCuttableProxy, type CuttableProxy } from "./cuttable-proxy.js";
import { startTestServer, type TestServer } from "./server.js";

const CHROMIUM = process.env.TAILHOOK_TEST_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url);

export interface PageTests {
  readonly server: TestServer;
  /** The browser reaches the server through this proxy, so a test can cut its connections. */
  readonly proxy: CuttableProxy;
  /** A page in a fresh context (closed after the test), its errors watched. */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  /** This test's browser context (after newPage). */
  readonly context: BrowserContext;
  /** The tab loses its network: offline, and every open connection dropped (offline alone leaves an open stream standing). */
  cutTab(): Promise<void>;
  restoreTab(): Promise<void>;
  screenshot(page: Page, name: string): Promise<void>;
}

/** Sets up the file's server, proxy and browser; `consoleNoise` matches console errors a page may log (lost connections). */
export function usePageTests(consoleNoise: RegExp): PageTests {
  let server: TestServer | undefined;
  let proxy: CuttableProxy | undefined;
  let browser: Browser | undefined;
  /** Every context this test opened; the last is the current one. */
  let contexts: BrowserContext[] = [];
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
    for (const context of contexts) await context.close();
    contexts = [];
    expect(pageErrors).toEqual([]);
    pageErrors = [];
  });

  return {
    get server() {
      return server!;
    },
    get proxy() {
      return proxy!;
    },
    get context() {
      return contexts.at(-1)!;
    },
    async newPage(options = {}) {
      const context = await browser!.newContext(options);
      contexts.push(context);
      const page = await context.newPage();
      page.on("pageerror", (error) => pageErrors.push(`pageerror: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error" && !consoleNoise.test(message.text())) pageErrors.push(`console: ${message.text()}`);
      });
      return page;
    },
    async cutTab() {
      await contexts.at(-1)!.setOffline(true);
      proxy!.cut();
    },
    async restoreTab() {
      proxy!.restore();
      await contexts.at(-1)!.setOffline(false);
    },
    async screenshot(page, name) {
      await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
    },
  };
}
