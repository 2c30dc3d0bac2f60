/*
 * Where subscription webhooks may go (SSRF): only globally routable unicast addresses,
 * classified by ipaddr.js, checked on every address a name resolves to; loopback only
 * under --open or --allow-local-webhooks. No test here reaches any address but
 * 127.0.0.1: public-looking names resolve through an injected resolver.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { checkWebhookUrl, isPublicAddress } from "../dist/subscriptions/webhook-url.js";
import { postJson } from "../dist/subscriptions/delivery.js";
import { startTestServer, type TestServer } from "./helpers/server.js";
import { killAllChildren, startServerProcess } from "./helpers/processes.js";

const notPublic = [
  "::ffff:0:a9fe:a9fe", // IPv4-translated 169.254.169.254 (RFC 6145)
  "::ffff:0:7f00:1",
  "::ffff:169.254.169.254",
  "::ffff:127.0.0.1",
  "::10.0.0.1", // IPv4-compatible, deprecated
  "198.51.100.7", // TEST-NET-2
  "203.0.113.9", // TEST-NET-3
  "192.0.2.1", // TEST-NET-1
  "192.0.0.8",
  "192.88.99.1", // 6to4 relay anycast
  "198.18.0.1", // benchmarking
  "240.0.0.1",
  "255.255.255.255",
  "0.0.0.0",
  "100::1", // discard-only (RFC 6666)
  "64:ff9b::a00:1", // NAT64 of 10.0.0.1
  "64:ff9b:1::1",
  "2002:a00:1::1", // 6to4 of 10.0.0.1
  "2001::1", // Teredo
  "2001:db8::1",
  "3fff::1",
  "5f00::1",
  "fec0::1",
  "fe80::1",
  "fd12::1",
  "ff02::1",
  "::1",
  "::",
  "127.0.0.1",
  "10.1.2.3",
  "172.16.0.1",
  "192.168.1.1",
  "169.254.169.254",
  "100.64.0.1",
  "not-an-address",
];
const isPublic = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8"];

describe("webhook address classification", () => {
  it("refuses every non-unicast range, embedded IPv4 included", () => {
    for (const address of notPublic) expect([address, isPublicAddress(address)]).toEqual([address, false]);
    for (const address of isPublic) expect([address, isPublicAddress(address)]).toEqual([address, true]);
  });

  it("refuses such literals in webhook URLs, even with the development exception on", () => {
    for (const address of notPublic.filter((a) => a !== "not-an-address" && a !== "127.0.0.1")) {
      const host = address.includes(":") ? `[${address}]` : address;
      const check = checkWebhookUrl(`https://${host}/hook`, { allowLocalhost: true });
      expect([address, check.ok]).toEqual([address, false]);
    }
    for (const address of isPublic) {
      const host = address.includes(":") ? `[${address}]` : address;
      expect([address, checkWebhookUrl(`https://${host}/hook`, { allowLocalhost: false }).ok]).toEqual([address, true]);
    }
  });
});

/** A local TCP listener that only counts connections: a refused delivery must make none. */
async function countingTarget(): Promise<{ server: NetServer; port: number; connections: () => number }> {
  let connections = 0;
  const server = createNetServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

/** A pino logger whose lines the test can wait for. */
function collectingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "warn" }, stream), lines };
}

const servers: TestServer[] = [];
const targets: NetServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  for (const target of targets.splice(0)) target.close();
  await killAllChildren();
});

describe("webhook delivery to a name that resolves to loopback", () => {
  it("postJson refuses before connecting, for every loopback spelling the resolver returns", async () => {
    const target = await countingTarget();
    targets.push(target.server);
    for (const address of ["127.0.0.1", "::ffff:127.0.0.1", "::1"]) {
      const asked: string[] = [];
      const outcome = await postJson(new URL(`http://hooks.example.com:${target.port}/hook`), "{}", {
        headers: {},
        timeoutMs: 5000,
        signal: new AbortController().signal,
        loopbackAllowed: false,
        resolve: async (hostname) => {
          asked.push(hostname);
          return [{ address, family: address.includes(":") ? 6 : 4 }];
        },
      });
      expect([address, outcome]).toEqual([address, { kind: "error", message: expect.stringContaining("non-public") }]);
      expect(asked).toEqual(["hooks.example.com"]);
    }
    expect(target.connections()).toBe(0);
  });

  it("checks the connected peer too: an address literal (no lookup) to loopback gets no byte of the request", async () => {
    let received = 0;
    let closed = 0;
    const target = createNetServer((socket) => {
      socket.on("data", (chunk: Buffer) => (received += chunk.length));
      socket.on("close", () => (closed += 1));
    });
    targets.push(target);
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    const { port } = target.address() as AddressInfo;
    // checkWebhookUrl refuses this literal; postJson is asked directly to show the last line of defence.
    const outcome = await postJson(new URL(`http://127.0.0.1:${port}/hook`), '{"secret":1}', {
      headers: {},
      timeoutMs: 5000,
      signal: new AbortController().signal,
      loopbackAllowed: false,
    });
    expect(outcome).toEqual({ kind: "error", message: expect.stringContaining("connected to a non-public address") });
    await expect.poll(() => closed, { timeout: 5000 }).toBe(1);
    expect(received).toBe(0);
  });

  it("a subscription's webhook to such a name is refused by the server, and no connection reaches the target", async () => {
    const target = await countingTarget();
    targets.push(target.server);
    const { logger, lines } = collectingLogger();
    const asked: string[] = [];
    // --open: even with local webhooks allowed, a public name may not lead to loopback.
    const server = await startTestServer(
      { open: true },
      {
        logger,
        webhookResolver: async (hostname: string) => {
          asked.push(hostname);
          return [{ address: "127.0.0.1", family: 4 }];
        },
      },
    );
    servers.push(server);
    const put = await fetch(`${server.url}/v1/stream/__ds/subscriptions/ssrf`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "webhook", pattern: "ssrf/*", webhook: { url: `https://hooks.example.com:${target.port}/hook` } }),
    });
    expect(put.status).toBe(201);
    expect(
      (await fetch(`${server.url}/v1/stream/ssrf/a`, { method: "PUT", headers: { "content-type": "application/json" }, body: "[1]" }))
        .status,
    ).toBe(201);
    await expect
      .poll(() => lines.find((line) => String(line.msg).includes("webhook delivery failed")), { timeout: 10_000 })
      .toMatchObject({ msg: expect.stringContaining("non-public address") });
    expect(asked).toContain("hooks.example.com");
    expect(target.connections()).toBe(0);
  });
});

describe("local webhook targets", () => {
  const body = (port: number) => JSON.stringify({ type: "webhook", pattern: "local/*", webhook: { url: `http://127.0.0.1:${port}/hook` } });

  it("are refused with 400 and a clear message unless the server allows them", async () => {
    const server = await startTestServer();
    servers.push(server);
    const response = await server.admin("/v1/stream/__ds/subscriptions/local", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: body(9),
    });
    expect(response.status).toBe(400);
    const refusal = (await response.json()) as { error: { code: string; message: string } };
    expect(refusal.error.code).toBe("WEBHOOK_URL_REJECTED");
    expect(refusal.error.message).toMatch(/--allow-local-webhooks/);
  });

  it("are accepted with allowLocalWebhooks (the flag) or TAILHOOK_ALLOW_LOCAL_WEBHOOKS", async () => {
    for (const [flags, env] of [
      [{ allowLocalWebhooks: true }, {}],
      [{}, { TAILHOOK_ALLOW_LOCAL_WEBHOOKS: "1" }],
    ] as const) {
      const server = await startTestServer(flags, { env });
      servers.push(server);
      const response = await server.admin("/v1/stream/__ds/subscriptions/local", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: body(9),
      });
      expect(response.status).toBe(201);
    }
  });

  it("`tailhook serve --allow-local-webhooks` accepts them; without it, 400", async () => {
    for (const [args, status] of [
      [["--allow-local-webhooks"], 201],
      [[], 400],
    ] as const) {
      const server = await startServerProcess({ args: [...args] });
      const response = await fetch(`${server.url}/v1/stream/__ds/subscriptions/local`, {
        method: "PUT",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.adminToken}` },
        body: body(9),
      });
      expect([args, response.status]).toEqual([args, status]);
      await server.kill();
    }
  });
});
