/*
 * Reconciliation sources against local stand-ins for GitHub's deliveries API and
 * Stripe's events API (test/helpers/fake-providers.ts) and a polled URL: events the
 * webhook path missed while tailhook was down end up in the inbox exactly once, after
 * the ones that arrived, in the order reconciled; a webhook arriving after its
 * reconciled copy is a duplicate; rate limits, 5xx and slow answers are survived;
 * a poll appends only changed content; credentials never come back from the API.
 */
import { createHmac, generateKeyPairSync } from "node:crypto";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { rmSync } from "node:fs";
import { bodyBytes, readAll, type Envelope } from "./helpers/http.js";
import { FakeGithub, FakePollTarget, FakeStripe } from "./helpers/fake-providers.js";
import { freePort, killAllChildren, startServerProcess, tempDir } from "./helpers/processes.js";
import { backendEnv, startTestServer, type TestServer } from "./helpers/server.js";

const ADMIN = "admin-token-for-sources-tests";
const GITHUB_TOKEN = "ghp_faketokenthatmustnotleak0001";
const STRIPE_KEY = "sk_test_fakekeythatmustnotleak0001";
const POLL_SECRET = "poll-secret-that-must-not-leak";
const HOOK_PATH = "/repos/acme/widgets/hooks/42/deliveries";
const APP_HOOK_PATH = "/app/hook/deliveries";
const appKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });
const APP_PRIVATE_KEY = appKeys.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
/** The PEM's base64 body without its armour: it must not appear in any reply either. */
const APP_KEY_BODY = APP_PRIVATE_KEY.split("\n").slice(1, -2).join("");

interface SourceView {
  id: string;
  credentials: Record<string, unknown>;
  status: {
    lastRun: { finishedAt: string; listed: number; missing: number; appended: number; complete: boolean; error: string | null } | null;
    cursor?: { after: string | null; before: string | null };
    error: string | null;
    failures: number;
    nextRunAt: string | null;
    rateLimitedUntil: string | null;
    recentErrors: Array<{ at: string; error: string }>;
  };
}

type Admin = (path: string, init?: RequestInit) => Promise<Response>;

function adminFor(url: string, token: string): Admin {
  return (path, init = {}) =>
    fetch(`${url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
        ...(init.headers as Record<string, string>),
      },
    });
}

async function createInbox(
  admin: Admin,
  settings: Record<string, unknown>,
): Promise<{ id: string; token: string; ingestUrl: string; streamUrl: string }> {
  const response = await admin("/api/inboxes", { method: "POST", body: JSON.stringify({ settings }) });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; token: string; ingestUrl: string; streamUrl: string };
}

async function createSource(admin: Admin, inboxId: string, body: Record<string, unknown>): Promise<{ view: SourceView; text: string }> {
  const response = await admin(`/api/inboxes/${inboxId}/sources`, { method: "POST", body: JSON.stringify(body) });
  const text = await response.text();
  expect(response.status, text).toBe(201);
  return { view: JSON.parse(text) as SourceView, text };
}

async function getSource(admin: Admin, inboxId: string, sourceId: string): Promise<{ view: SourceView; text: string }> {
  const response = await admin(`/api/inboxes/${inboxId}/sources/${sourceId}`);
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return { view: JSON.parse(text) as SourceView, text };
}

/** Waits until the source's status satisfies `done`. */
async function waitForStatus(
  admin: Admin,
  inboxId: string,
  sourceId: string,
  done: (view: SourceView) => boolean,
  timeout = 20_000,
): Promise<SourceView> {
  let last: SourceView | undefined;
  await vi.waitFor(
    async () => {
      last = (await getSource(admin, inboxId, sourceId)).view;
      if (!done(last)) throw new Error(`not yet: ${JSON.stringify(last.status)}`);
    },
    { timeout, interval: 50 },
  );
  return last!;
}

/** Asks for a run now and waits for its report (a run that finished after the request). */
async function runNow(admin: Admin, inboxId: string, sourceId: string): Promise<SourceView> {
  const before = (await getSource(admin, inboxId, sourceId)).view.status.lastRun?.finishedAt ?? "";
  const response = await admin(`/api/inboxes/${inboxId}/sources/${sourceId}/run`, { method: "POST" });
  expect(response.status).toBe(202);
  return waitForStatus(admin, inboxId, sourceId, (view) => (view.status.lastRun?.finishedAt ?? "") > before);
}

function header(event: Envelope, name: string): string | undefined {
  return event.headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
}

function expectNoSecrets(text: string): void {
  for (const secret of [GITHUB_TOKEN, STRIPE_KEY, POLL_SECRET]) expect(text).not.toContain(secret);
  expect(text).not.toContain("PRIVATE KEY");
  for (const line of APP_PRIVATE_KEY.split("\n").slice(1, -2)) expect(text).not.toContain(line);
  expect(text).not.toContain(APP_KEY_BODY.slice(0, 64));
}

const fakes: Array<{ close(): Promise<void> }> = [];
const servers: TestServer[] = [];

afterEach(async () => {
  await killAllChildren();
  for (const server of servers.splice(0)) await server.stop().catch(() => undefined);
  for (const fake of fakes.splice(0)) await fake.close();
});

afterAll(killAllChildren);

async function startGithub(): Promise<FakeGithub> {
  const github = await new FakeGithub(GITHUB_TOKEN, HOOK_PATH, "github-webhook-secret").start();
  fakes.push(github);
  return github;
}

async function startServer(env: NodeJS.ProcessEnv, dataDir?: string, port = 0): Promise<TestServer> {
  const server = await startTestServer({ port }, { env: { TAILHOOK_ADMIN_TOKEN: ADMIN, ...env }, ...(dataDir ? { dataDir } : {}) });
  servers.push(server);
  return server;
}

describe("github source", () => {
  it("appends the deliveries missed while the server was down, once each, after the ones that arrived; a late webhook is a duplicate", async () => {
    const github = await startGithub();
    const dataDir = tempDir("tailhook-sources-");
    const port = await freePort();
    const env = { TAILHOOK_ADMIN_TOKEN: ADMIN, TAILHOOK_GITHUB_API_URL: github.url, ...backendEnv(dataDir) };
    let server = await startServerProcess({ dataDir, port, env });
    const admin = adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin, { dedupe: "github" });
    github.ingestUrl = inbox.ingestUrl;

    const guids: string[] = [];
    for (let n = 1; n <= 3; n++) guids.push(await github.send("push", { n, ref: "refs/heads/main" }));
    await server.kill("SIGTERM");
    for (let n = 4; n <= 7; n++) guids.push(await github.send("push", { n, ref: "refs/heads/main" }));
    expect(github.deliveries.slice(3).map((delivery) => delivery.statusCode)).toEqual([0, 0, 0, 0]);
    server = await startServerProcess({ dataDir, port, env });
    for (let n = 8; n <= 9; n++) guids.push(await github.send("push", { n, ref: "refs/heads/main" }));
    expect(github.deliveries.filter((delivery) => delivery.statusCode === 200)).toHaveLength(5);

    const { view, text } = await createSource(admin, inbox.id, {
      kind: "github",
      repository: "acme/widgets",
      hookId: 42,
      token: GITHUB_TOKEN,
      intervalSeconds: 3600,
    });
    expectNoSecrets(text);
    expect(view.credentials).toEqual({ token: "set" });
    const done = await waitForStatus(admin, inbox.id, view.id, (source) => source.status.lastRun !== null);
    expect(done.status.lastRun).toMatchObject({ listed: 9, missing: 4, appended: 4, error: null });

    const { events } = await readAll(inbox.streamUrl, inbox.token);
    const order = [1, 2, 3, 8, 9, 4, 5, 6, 7].map((n) => guids[n - 1]);
    expect(events.map((event) => header(event, "X-GitHub-Delivery"))).toEqual(order);
    for (const event of events.slice(5)) {
      expect(event).toMatchObject({ origin: "reconciled", source: view.id, method: "POST" });
      expect(header(event, "X-GitHub-Event")).toBe("push");
      expect(header(event, "X-Hub-Signature-256")).toMatch(/^sha256=/);
    }
    expect(events.slice(5).map((event) => (JSON.parse(event.body) as { n: number }).n)).toEqual([4, 5, 6, 7]);
    expect(events.slice(0, 5).every((event) => event.origin === undefined)).toBe(true);

    // Pagination went by the cursor only (the Link URLs point at a closed port), 100 per page asked.
    const lists = github.apiRequests(/\/deliveries$/);
    expect(lists.length).toBe(3);
    expect(lists.every((request) => request.url.searchParams.get("per_page") === "100")).toBe(true);
    expect(lists.slice(1).every((request) => request.url.searchParams.get("cursor") !== null)).toBe(true);
    // Only the missing deliveries were fetched one by one.
    expect(github.apiRequests(/\/deliveries\/\d+$/)).toHaveLength(4);

    // GitHub sends one of the reconciled ones again through the webhook path: the same ack, no second copy.
    const reconciledFive = events.find((event) => header(event, "X-GitHub-Delivery") === guids[4])!;
    const late = await fetch(inbox.ingestUrl, { method: "POST", headers: github.deliveries[4]!.headers, body: github.deliveries[4]!.body });
    expect(late.status).toBe(200);
    expect(((await late.json()) as { seq: number }).seq).toBe(reconciledFive.seq);
    const again = await runNow(admin, inbox.id, view.id);
    expect(again.status.lastRun).toMatchObject({ listed: 9, missing: 0, appended: 0, error: null });
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(9);

    const list = await admin(`/api/inboxes/${inbox.id}/sources`);
    expectNoSecrets(await list.text());
    await server.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("survives a 5xx and an answer slower than its timeout, backing off, and reports both", async () => {
    const github = await startGithub();
    const server = await startServer({ TAILHOOK_GITHUB_API_URL: github.url });
    const admin = adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin, { dedupe: "github" });
    github.ingestUrl = "http://127.0.0.1:9/closed";
    for (let n = 1; n <= 4; n++) await github.send("issues", { n });
    github.faults.push({ status: 502 }, { delayMs: 1500 });
    const { view } = await createSource(admin, inbox.id, {
      kind: "github",
      repository: "acme/widgets",
      hookId: 42,
      token: GITHUB_TOKEN,
      intervalSeconds: 3600,
      timeoutMs: 300,
    });
    const done = await waitForStatus(admin, inbox.id, view.id, (source) => source.status.lastRun?.error === null);
    expect(done.status.recentErrors.map((entry) => entry.error)).toEqual([
      expect.stringMatching(/answered 502/),
      expect.stringMatching(/no answer within 300 ms/),
    ]);
    expect(done.status).toMatchObject({ failures: 0, error: null });
    expect(done.status.lastRun).toMatchObject({ listed: 4, missing: 4, appended: 4 });
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => (JSON.parse(event.body) as { n: number }).n)).toEqual([1, 2, 3, 4]);
  });

  it("waits for Retry-After after a 429 and for x-ratelimit-reset after a 403 rate-limit answer", async () => {
    const github = await startGithub();
    const server = await startServer({ TAILHOOK_GITHUB_API_URL: github.url });
    const admin = adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin, { dedupe: "github" });
    github.ingestUrl = "http://127.0.0.1:9/closed";
    for (let n = 1; n <= 2; n++) await github.send("issues", { n });
    const reset = Math.ceil(Date.now() / 1000) + 2;
    github.faults.push(
      { status: 429, headers: { "retry-after": "1" } },
      { status: 403, headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset), "x-ratelimit-limit": "5000" } },
    );
    const { view } = await createSource(admin, inbox.id, {
      kind: "github",
      repository: "acme/widgets",
      hookId: 42,
      token: GITHUB_TOKEN,
      intervalSeconds: 3600,
    });
    const done = await waitForStatus(admin, inbox.id, view.id, (source) => source.status.lastRun?.error === null);
    expect(done.status.recentErrors.map((entry) => entry.error)).toEqual([
      expect.stringMatching(/rate limited \(429\)/),
      expect.stringMatching(/rate limited \(403\)/),
    ]);
    const [first, second, third] = github.requests;
    expect(first!.status).toBe(429);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
    expect(second!.status).toBe(403);
    expect(third!.at).toBeGreaterThanOrEqual(reset * 1000);
    expect(done.status.lastRun).toMatchObject({ appended: 2 });
  });

  it("a 2xx that spends the last request of the limit holds the next request until x-ratelimit-reset", async () => {
    const github = await startGithub();
    const server = await startServer({ TAILHOOK_GITHUB_API_URL: github.url });
    const admin = adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin, { dedupe: "github" });
    github.ingestUrl = "http://127.0.0.1:9/closed";
    for (let n = 1; n <= 4; n++) await github.send("issues", { n });
    const reset = Math.ceil(Date.now() / 1000) + 2;
    github.answerHeaders.push({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) });
    const { view } = await createSource(admin, inbox.id, {
      kind: "github",
      repository: "acme/widgets",
      hookId: 42,
      token: GITHUB_TOKEN,
      intervalSeconds: 3600,
    });
    const done = await waitForStatus(admin, inbox.id, view.id, (source) => source.status.lastRun?.error === null);
    expect(done.status.recentErrors.map((entry) => entry.error)).toEqual([expect.stringMatching(/rate limit spent/)]);
    const [first, ...later] = github.requests;
    expect(first!.status).toBe(200);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((request) => request.at >= reset * 1000)).toBe(true);
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(4);
  });

  it("in redeliver mode asks GitHub to send the missing delivery again, whose original bytes then verify; append mode's copy verifies only for compact JSON", async () => {
    const github = await startGithub();
    const server = await startServer({ TAILHOOK_GITHUB_API_URL: github.url });
    const admin = adminFor(server.url, ADMIN);
    const verifies = (event: Envelope) =>
      header(event, "X-Hub-Signature-256") ===
      `sha256=${createHmac("sha256", github.webhookSecret).update(bodyBytes(event)).digest("hex")}`;

    const verify = { scheme: "github", secrets: [github.webhookSecret], mode: "enforce" };
    const redeliverInbox = await createInbox(admin, { dedupe: "github", verify });
    github.ingestUrl = "http://127.0.0.1:9/closed";
    const missed = await github.send("push", { pretty: true, text: "caf\u00e9 </script>" }, { pretty: true });
    github.ingestUrl = redeliverInbox.ingestUrl;
    const { view } = await createSource(admin, redeliverInbox.id, {
      kind: "github",
      repository: "acme/widgets",
      hookId: 42,
      token: GITHUB_TOKEN,
      mode: "redeliver",
      intervalSeconds: 3600,
    });
    const first = await waitForStatus(admin, redeliverInbox.id, view.id, (source) => source.status.lastRun !== null);
    expect(first.status.lastRun).toMatchObject({ listed: 1, missing: 1, appended: 1, error: null });
    await vi.waitFor(async () => expect((await readAll(redeliverInbox.streamUrl, redeliverInbox.token)).events).toHaveLength(1));
    const [redelivered] = (await readAll(redeliverInbox.streamUrl, redeliverInbox.token)).events;
    expect(header(redelivered!, "X-GitHub-Delivery")).toBe(missed);
    expect(redelivered!.origin).toBeUndefined();
    expect(verifies(redelivered!)).toBe(true);
    // It came through ingest, so the inbox's own verification passed it (enforce mode).
    expect(redelivered!.verification).toMatchObject({ scheme: "github", ok: true });
    const second = await runNow(admin, redeliverInbox.id, view.id);
    expect(second.status.lastRun).toMatchObject({ missing: 0, appended: 0 });
    expect(github.apiRequests(/\/attempts$/)).toHaveLength(1);

    // Append mode, for comparison: GitHub keeps the payload parsed, so the copy is a re-serialisation.
    await github.send("push", { compact: true, text: "caf\u00e9" });
    const appendInbox = await createInbox(admin, { dedupe: "github", verify });
    const { view: appendSource } = await createSource(admin, appendInbox.id, {
      kind: "github",
      repository: "acme/widgets",
      hookId: 42,
      token: GITHUB_TOKEN,
      intervalSeconds: 3600,
    });
    const appended = await waitForStatus(admin, appendInbox.id, appendSource.id, (source) => source.status.lastRun !== null);
    expect(appended.status.lastRun).toMatchObject({ listed: 2, missing: 2, appended: 2, error: null });
    const copies = (await readAll(appendInbox.streamUrl, appendInbox.token)).events.filter((event) => event.origin === "reconciled");
    const pretty = copies.find((event) => header(event, "X-GitHub-Delivery") === missed)!;
    expect(verifies(pretty)).toBe(false);
    // Copies do not pass through ingest: no verdict, and appended in enforce mode too.
    expect(copies.every((event) => event.verification === undefined)).toBe(true);
    const compactCopies = copies.filter((event) => event !== pretty);
    expect(compactCopies.length).toBeGreaterThan(0);
    expect(compactCopies.every(verifies)).toBe(true);
  });

  it("an app hook signs a fresh RS256 JWT with the app's private key for each run; a wrong key gets 401, reported in the status; the key is never returned", async () => {
    const github = await new FakeGithub("no-token-for-apps", APP_HOOK_PATH, "github-webhook-secret").start();
    fakes.push(github);
    github.app = { iss: "123456", publicKey: appKeys.publicKey };
    const server = await startServer({ TAILHOOK_GITHUB_API_URL: github.url });
    const admin = adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin, { dedupe: "github" });
    github.ingestUrl = inbox.ingestUrl;
    const guids = [await github.send("installation", { n: 1 })];
    github.ingestUrl = "http://127.0.0.1:9/closed";
    for (let n = 2; n <= 4; n++) guids.push(await github.send("installation", { n }));

    // A bad key is refused at creation, with a message that does not echo it.
    const notAKey = "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbCwgc29ycnk=\n-----END RSA PRIVATE KEY-----\n";
    for (const privateKey of [notAKey, "just-a-string", 42]) {
      const response = await admin(`/api/inboxes/${inbox.id}/sources`, {
        method: "POST",
        body: JSON.stringify({ kind: "github", app: true, appId: 123456, privateKey }),
      });
      const text = await response.text();
      expect(response.status).toBe(400);
      expect(text).toMatch(/privateKey must be .*PEM/);
      expect(text).not.toContain("bm90IGEga2V5");
      expect(text).not.toContain("just-a-string");
    }
    const missingId = await admin(`/api/inboxes/${inbox.id}/sources`, {
      method: "POST",
      body: JSON.stringify({ kind: "github", app: true, privateKey: APP_PRIVATE_KEY }),
    });
    expect(missingId.status).toBe(400);
    expect(await missingId.text()).toMatch(/appId/);

    const { view, text } = await createSource(admin, inbox.id, {
      kind: "github",
      app: true,
      appId: 123456,
      privateKey: APP_PRIVATE_KEY,
      intervalSeconds: 3600,
    });
    expectNoSecrets(text);
    expect(view).toMatchObject({ app: true, appId: "123456", credentials: { privateKey: "set" } });
    const done = await waitForStatus(admin, inbox.id, view.id, (source) => source.status.lastRun !== null);
    expect(done.status.lastRun).toMatchObject({ listed: 4, missing: 3, appended: 3, error: null });
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.map((event) => header(event, "X-GitHub-Delivery"))).toEqual(guids);
    expect(events.slice(1).every((event) => event.origin === "reconciled")).toBe(true);
    // Every request (two list pages, each missing delivery) carried a JWT GitHub accepts.
    const used = github.apiRequests(/^\/app\/hook\/deliveries/);
    expect(used.map((request) => request.status)).toEqual([200, 200, 200, 200, 200]);
    const claims = JSON.parse(Buffer.from(String(used[0]!.headers.authorization).split(".")[1]!, "base64url").toString()) as {
      iat: number;
      exp: number;
      iss: string;
    };
    expect(claims.iss).toBe("123456");
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);
    expect(Math.abs(claims.iat - (Math.floor(used[0]!.at / 1000) - 60))).toBeLessThanOrEqual(1);
    const again = await runNow(admin, inbox.id, view.id);
    expect(again.status.lastRun).toMatchObject({ listed: 4, missing: 0, appended: 0, error: null });

    // Another app's key (or the client id as iss): GitHub answers 401, and the status says so.
    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const { view: wrong, text: wrongText } = await createSource(admin, inbox.id, {
      kind: "github",
      app: true,
      appId: "Iv23liFakeClientId",
      privateKey: otherKey,
      intervalSeconds: 3600,
    });
    expect(wrongText).not.toContain(otherKey.split("\n")[1]!);
    const failed = await waitForStatus(admin, inbox.id, wrong.id, (source) => source.status.lastRun !== null);
    expect(failed.status.error).toMatch(/answered 401/);
    expect(failed.status.failures).toBe(1);
    expect(github.requests.at(-1)!.status).toBe(401);
    const list = await admin(`/api/inboxes/${inbox.id}/sources`);
    const listText = await list.text();
    expectNoSecrets(listText);
    expect(listText).not.toContain(otherKey.split("\n")[1]!);
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(4);
  });
});

describe("stripe source", () => {
  it("appends the events missed while the server was down, once each, oldest first; a Stripe retry after its copy is a duplicate", async () => {
    const stripe = await new FakeStripe(STRIPE_KEY, "whsec_fake").start();
    fakes.push(stripe);
    const dataDir = tempDir("tailhook-sources-");
    let server = await startServer({ TAILHOOK_STRIPE_API_URL: stripe.url }, dataDir);
    const port = Number(new URL(server.url).port);
    const admin = () => adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin(), { dedupe: "stripe" });
    stripe.ingestUrl = inbox.ingestUrl;

    const ids: string[] = [];
    for (const type of ["payment_intent.created", "payment_intent.succeeded"]) ids.push((await stripe.send(type)).id);
    await server.close();
    for (const type of ["charge.succeeded", "invoice.paid", "customer.updated"]) {
      const sent = await stripe.send(type);
      expect(sent.status).toBe(0);
      ids.push(sent.id);
    }
    server = await startServer({ TAILHOOK_STRIPE_API_URL: stripe.url }, dataDir, port);
    ids.push((await stripe.send("payout.paid")).id);

    const { view, text } = await createSource(admin(), inbox.id, { kind: "stripe", secretKey: STRIPE_KEY, intervalSeconds: 3600 });
    expectNoSecrets(text);
    expect(view.credentials).toEqual({ secretKey: "set" });
    const done = await waitForStatus(admin(), inbox.id, view.id, (source) => source.status.lastRun !== null);
    expect(done.status.lastRun).toMatchObject({ listed: 6, missing: 3, appended: 3, error: null });
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    const idOf = (event: Envelope) => (JSON.parse(event.body) as { id: string }).id;
    expect(events.map(idOf)).toEqual([ids[0], ids[1], ids[5], ids[2], ids[3], ids[4]]);
    expect(events.slice(3).every((event) => event.origin === "reconciled" && event.source === view.id)).toBe(true);
    expect(JSON.parse(events[3]!.body)).toEqual(stripe.events[2]);
    // has_more pagination: 6 events, 2 per page.
    const lists = stripe.apiRequests(/^\/v1\/events$/);
    expect(lists).toHaveLength(3);
    expect(lists.slice(1).map((request) => request.url.searchParams.get("starting_after"))).toEqual([ids[4], ids[2]]);

    const retried = await stripe.deliver(stripe.events[3]!);
    expect(retried).toBe(200);
    const again = await runNow(admin(), inbox.id, view.id);
    expect(again.status.lastRun).toMatchObject({ missing: 0, appended: 0, error: null });
    // The second run lists only what is newer than the newest event seen.
    const second = stripe.apiRequests(/^\/v1\/events$/).at(-1)!.url.searchParams;
    expect(second.get("ending_before")).toBe(ids[5]);
    expect(second.get("starting_after")).toBeNull();
    expect((await readAll(inbox.streamUrl, inbox.token)).events).toHaveLength(6);
  });

  it("a backlog over the per-run cap is reconciled over several bounded runs, oldest first, each event once, the cursor advancing every run", async () => {
    const stripe = await new FakeStripe(STRIPE_KEY, "whsec_fake").start();
    fakes.push(stripe);
    const server = await startTestServer(
      { port: 0 },
      { env: { TAILHOOK_ADMIN_TOKEN: ADMIN, TAILHOOK_STRIPE_API_URL: stripe.url }, sources: { stripeMaxEventsPerRun: 3 } },
    );
    servers.push(server);
    const admin = adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin, { dedupe: "stripe" });
    stripe.ingestUrl = inbox.ingestUrl;
    const ids = [(await stripe.send("first.delivered")).id];
    stripe.ingestUrl = "http://127.0.0.1:9/closed";
    for (let n = 1; n <= 7; n++) ids.push((await stripe.send(`missed.${n}`)).id);
    stripe.ingestUrl = inbox.ingestUrl;
    ids.push((await stripe.send("last.delivered")).id);

    const { view } = await createSource(admin, inbox.id, { kind: "stripe", secretKey: STRIPE_KEY, intervalSeconds: 3600 });
    const reports = [(await waitForStatus(admin, inbox.id, view.id, (source) => source.status.lastRun !== null)).status];
    while (!reports.at(-1)!.lastRun!.complete && reports.length < 10) reports.push((await runNow(admin, inbox.id, view.id)).status);
    expect(reports.at(-1)!.lastRun!.complete).toBe(true);
    expect(reports.length).toBeGreaterThan(2);
    for (const status of reports) {
      expect(status.lastRun!.error).toBeNull();
      expect(status.lastRun!.listed).toBeLessThanOrEqual(3);
    }
    // Every run moved the cursor: no run listed the same events again.
    const cursors = reports.map((status) => JSON.stringify(status.cursor));
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(reports.at(-1)!.cursor).toEqual({ after: ids[8], before: null });
    expect(reports.reduce((sum, status) => sum + status.lastRun!.appended, 0)).toBe(7);
    expect(reports.reduce((sum, status) => sum + status.lastRun!.listed, 0)).toBeLessThanOrEqual(2 * ids.length);

    const { events } = await readAll(inbox.streamUrl, inbox.token);
    const idOf = (event: Envelope) => (JSON.parse(event.body) as { id: string }).id;
    expect(events.map(idOf)).toEqual([ids[0], ids[8], ...ids.slice(1, 8)]);
    expect(events.slice(2).every((event) => event.origin === "reconciled")).toBe(true);

    // Caught up: the next run lists nothing, and a new missed event is appended after the rest.
    stripe.ingestUrl = "http://127.0.0.1:9/closed";
    const late = (await stripe.send("missed.late")).id;
    const after = await runNow(admin, inbox.id, view.id);
    expect(after.status.lastRun).toMatchObject({ listed: 1, missing: 1, appended: 1, complete: true, error: null });
    expect((await readAll(inbox.streamUrl, inbox.token)).events.map(idOf)).toEqual([ids[0], ids[8], ...ids.slice(1, 8), late]);
  });
});

describe("poll source", () => {
  it("appends the body only when its content changed (A, A, B, B, A → A, B, A), remembering the hash across a restart", async () => {
    const target = await new FakePollTarget(POLL_SECRET).start();
    fakes.push(target);
    target.bodies.push('{"state":"A"}', '{"state":"A"}', '{"state":"B"}', '{"state":"B"}', '{"state":"A"}');
    const dataDir = tempDir("tailhook-sources-");
    let server = await startServer({}, dataDir);
    const port = Number(new URL(server.url).port);
    const admin = () => adminFor(server.url, ADMIN);
    const inbox = await createInbox(admin(), {});
    const { view, text } = await createSource(admin(), inbox.id, {
      kind: "poll",
      url: `${target.url}/state`,
      headers: { Authorization: `Bearer ${POLL_SECRET}` },
      intervalSeconds: 3600,
    });
    expectNoSecrets(text);
    expect(view.credentials).toEqual({ headers: ["authorization"] });
    await waitForStatus(admin(), inbox.id, view.id, (source) => source.status.lastRun !== null);
    for (let n = 2; n <= 5; n++) expect((await runNow(admin(), inbox.id, view.id)).status.lastRun?.error).toBeNull();
    const states = async () =>
      (await readAll(inbox.streamUrl, inbox.token)).events.map((event) => (JSON.parse(event.body) as { state: string }).state);
    expect(await states()).toEqual(["A", "B", "A"]);
    const { events } = await readAll(inbox.streamUrl, inbox.token);
    expect(events.every((event) => event.origin === "poll" && event.source === view.id && event.method === "GET")).toBe(true);
    expect(target.requests.every((request) => request.headers.authorization === `Bearer ${POLL_SECRET}`)).toBe(true);

    // Restarted, the same content (A, the last one again) is not appended again.
    await server.close();
    server = await startServer({}, dataDir, port);
    const after = await runNow(admin(), inbox.id, view.id);
    expect(after.status.lastRun).toMatchObject({ listed: 1, missing: 0, appended: 0, error: null });
    expect(target.served).toBe(6);
    expect(await states()).toEqual(["A", "B", "A"]);
  });
});

describe("provider base URLs", () => {
  it("are https, or http only to loopback, and default to the providers' APIs", async () => {
    const { loadServerConfig } = await import("../dist/config.js");
    expect(loadServerConfig({}, {})).toMatchObject({ githubApiUrl: "https://api.github.com", stripeApiUrl: "https://api.stripe.com" });
    expect(loadServerConfig({}, { TAILHOOK_GITHUB_API_URL: "http://127.0.0.1:4010" }).githubApiUrl).toBe("http://127.0.0.1:4010");
    expect(loadServerConfig({}, { TAILHOOK_STRIPE_API_URL: "https://stripe.internal.example/" }).stripeApiUrl).toBe(
      "https://stripe.internal.example",
    );
    expect(() => loadServerConfig({}, { TAILHOOK_GITHUB_API_URL: "http://api.github.com" })).toThrow(/https/);
    expect(() => loadServerConfig({}, { TAILHOOK_STRIPE_API_URL: "ftp://127.0.0.1" })).toThrow();
  });
});

describe("sources API", () => {
  it("needs the admin token, refuses what it cannot run safely, and goes away with its inbox", async () => {
    const server = await startServer({});
    const admin = adminFor(server.url, ADMIN);
    const plain = await createInbox(admin, {});
    const github = await createInbox(admin, { dedupe: "github" });
    const byInboxToken = await fetch(`${server.url}/api/inboxes/${github.id}/sources`, {
      headers: { authorization: `Bearer ${github.token}` },
    });
    expect(byInboxToken.status).toBe(401);
    const refused: Array<[string, Record<string, unknown>, RegExp]> = [
      [plain.id, { kind: "github", repository: "acme/widgets", hookId: 42, token: GITHUB_TOKEN }, /settings\.dedupe/],
      [plain.id, { kind: "stripe", secretKey: STRIPE_KEY }, /settings\.dedupe/],
      [github.id, { kind: "github", repository: "acme/../x", hookId: 42, token: GITHUB_TOKEN }, /owner\/repo/],
      [github.id, { kind: "github", repository: "acme/widgets", token: GITHUB_TOKEN }, /hookId/],
      [github.id, { kind: "github", repository: "acme/widgets", hookId: 42 }, /token/],
      [github.id, { kind: "github", app: true, appId: 1, token: GITHUB_TOKEN }, /appId and privateKey, not token/],
      [
        github.id,
        { kind: "github", repository: "acme/widgets", hookId: 42, token: GITHUB_TOKEN, privateKey: APP_PRIVATE_KEY },
        /app: true only/,
      ],
      [
        github.id,
        { kind: "github", repository: "acme/widgets", hookId: 42, token: GITHUB_TOKEN, url: "http://127.0.0.1:1" },
        /unknown field url/,
      ],
      [plain.id, { kind: "poll", url: "http://192.0.2.1/state" }, /https/],
      [plain.id, { kind: "poll", url: "https://user:pw@127.0.0.1/state" }, /credentials/],
      [plain.id, { kind: "poll", url: "https://127.0.0.1/state", headers: { "bad name": "x" } }, /header name/],
      [plain.id, { kind: "ftp" }, /kind/],
    ];
    for (const [inboxId, body, message] of refused) {
      const response = await admin(`/api/inboxes/${inboxId}/sources`, { method: "POST", body: JSON.stringify(body) });
      const text = await response.text();
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(text).toMatch(message);
      expectNoSecrets(text);
    }
    // A closed local port: the run fails and says so, and the source can be deleted.
    const closed = `http://127.0.0.1:${await freePort()}/state`;
    const { view } = await createSource(admin, plain.id, { kind: "poll", url: closed, intervalSeconds: 3600 });
    const failed = await waitForStatus(admin, plain.id, view.id, (source) => source.status.error !== null);
    expect(failed.status.failures).toBeGreaterThanOrEqual(1);
    expect((await admin(`/api/inboxes/${plain.id}/sources/${view.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await admin(`/api/inboxes/${plain.id}/sources/${view.id}`)).status).toBe(404);

    // Deleting the inbox deletes its sources, credentials and all.
    const { view: other } = await createSource(admin, plain.id, {
      kind: "poll",
      url: closed,
      headers: { authorization: POLL_SECRET },
      intervalSeconds: 3600,
    });
    const stored = async () => (await server.store.general!.listRecords("source")).map((record) => record.key);
    expect(await stored()).toContain(other.id);
    expect((await admin(`/api/inboxes/${plain.id}`, { method: "DELETE" })).status).toBe(204);
    await vi.waitFor(async () => expect(await stored()).not.toContain(other.id), { timeout: 20_000, interval: 100 });
  });
});
