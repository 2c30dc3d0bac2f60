/*
 * Local stand-ins for GitHub's webhook deliveries API and Stripe's events API, on
 * 127.0.0.1 port 0, following their published shapes: GitHub lists deliveries newest
 * first with cursor pagination in the Link header (an app hook takes only a JWT
 * signed with the app's key), keeps each delivery's request
 * (headers and the payload, parsed) and redelivers on POST …/attempts; Stripe lists
 * events newest first with created[gte], starting_after or ending_before (the page
 * just newer than that event, still newest first), limit and has_more. Both
 * also "send" webhooks to an ingest URL and record every event, sent or not, as the
 * real senders do. Scripted faults (a status with headers, or a slow answer) answer
 * the next API requests, one each.
 */
import { createHmac, randomUUID, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Fault {
  status?: number;
  headers?: Record<string, string>;
  /** Answer only after this long (beyond the source's timeout: a slow provider). */
  delayMs?: number;
}

export interface LoggedRequest {
  at: number;
  method: string;
  url: URL;
  headers: IncomingMessage["headers"];
  /** The status it was answered with. */
  status: number;
}

abstract class FakeApi {
  url = "";
  readonly faults: Fault[] = [];
  /** Extra headers on the next ordinary (not faulted) answers, one set each: e.g. a spent rate limit on a 200. */
  readonly answerHeaders: Array<Record<string, string>> = [];
  readonly requests: LoggedRequest[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<import("node:net").Socket>();

  constructor(protected readonly credential: string) {}

  async start(): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Requests to the API (not the health of the webhooks we send). */
  apiRequests(path: RegExp): LoggedRequest[] {
    return this.requests.filter((request) => path.test(request.url.pathname));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const logged: LoggedRequest = { at: Date.now(), method: req.method ?? "GET", url, headers: req.headers, status: 0 };
    this.requests.push(logged);
    for await (const _chunk of req) void _chunk;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      logged.status = status;
      const text = body === undefined ? "" : JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(text);
    };
    const fault = this.faults.shift();
    if (fault) {
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (res.destroyed) return;
      if (fault.status) return send(fault.status, { message: "scripted fault" }, fault.headers);
    }
    if (!this.authorized(req.headers.authorization)) return send(401, { message: "Bad credentials" });
    const answer = await this.route(req.method ?? "GET", url);
    send(answer.status, answer.body, { ...answer.headers, ...this.answerHeaders.shift() });
  }

  protected authorized(authorization: string | undefined): boolean {
    return authorization === `Bearer ${this.credential}`;
  }

  protected abstract route(method: string, url: URL): Promise<{ status: number; body?: unknown; headers?: Record<string, string> }>;
}

/** Sends bytes to an ingest URL; the status, or 0 when nothing answered (the server is down). */
async function deliver(ingestUrl: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  try {
    const response = await fetch(ingestUrl, { method: "POST", headers, body });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

export interface GithubDelivery {
  id: number;
  guid: string;
  deliveredAt: string;
  redelivery: boolean;
  statusCode: number;
  event: string;
  headers: Record<string, string>;
  /** The bytes sent, exactly. */
  body: Buffer;
}

/** A GitHub App as GitHub knows it: its id (the JWT's iss) and the public half of its key. */
export interface FakeGithubApp {
  iss: string;
  publicKey: KeyObject;
}

/**
 * GitHub's check of an app JWT: RS256 over base64url header.payload with the app's
 * public key, iss the app, exp at most 10 minutes after iat, and not expired.
 */
export function verifyAppJwt(authorization: string | undefined, app: FakeGithubApp, now = Date.now()): boolean {
  const match = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(authorization ?? "");
  if (!match) return false;
  const [, header, payload, signature] = match;
  try {
    if (JSON.parse(Buffer.from(header!, "base64url").toString()).alg !== "RS256") return false;
    if (!verify("sha256", Buffer.from(`${header}.${payload}`), app.publicKey, Buffer.from(signature!, "base64url"))) return false;
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString()) as { iat?: unknown; exp?: unknown; iss?: unknown };
    if (typeof claims.iat !== "number" || typeof claims.exp !== "number" || String(claims.iss) !== app.iss) return false;
    const seconds = now / 1000;
    return claims.exp - claims.iat <= 600 && claims.exp > seconds && claims.iat <= seconds + 60;
  } catch {
    return false;
  }
}

export class FakeGithub extends FakeApi {
  readonly deliveries: GithubDelivery[] = [];
  /** When set, the API takes only this app's JWTs (app hooks), not the token. */
  app: FakeGithubApp | undefined;
  /** Where the hook sends; GitHub's hook configuration. */
  ingestUrl = "";
  /** GitHub caps per_page at 100; a smaller cap here makes pagination visible with few events. */
  maxPerPage = 3;
  /** The Link header's URLs point here, not at the API: a client that followed them would fail. */
  linkBase = "http://127.0.0.1:9";
  private nextId = 1000;

  constructor(
    token: string,
    readonly hookPath: string,
    readonly webhookSecret: string,
  ) {
    super(token);
  }

  /** Records a new event and sends it to the hook (it fails while the server is down); returns its guid. */
  async send(event: string, payload: unknown, options: { pretty?: boolean } = {}): Promise<string> {
    const guid = randomUUID();
    const body = Buffer.from(options.pretty ? JSON.stringify(payload, null, 2) : JSON.stringify(payload));
    const headers = {
      Accept: "*/*",
      "User-Agent": "GitHub-Hookshot/fake",
      "X-GitHub-Delivery": guid,
      "X-GitHub-Event": event,
      "X-GitHub-Hook-ID": "42",
      "X-Hub-Signature-256": `sha256=${createHmac("sha256", this.webhookSecret).update(body).digest("hex")}`,
      "Content-Type": "application/json",
    };
    await this.attempt(guid, event, headers, body, false);
    return guid;
  }

  /** GitHub sends a delivery again (a redelivery: same guid, same bytes). */
  async redeliver(guid: string): Promise<number> {
    const original = this.deliveries.find((delivery) => delivery.guid === guid)!;
    return this.attempt(guid, original.event, original.headers, original.body, true);
  }

  private async attempt(guid: string, event: string, headers: Record<string, string>, body: Buffer, redelivery: boolean): Promise<number> {
    const statusCode = await deliver(this.ingestUrl, headers, body);
    this.deliveries.push({ id: this.nextId++, guid, deliveredAt: new Date().toISOString(), redelivery, statusCode, event, headers, body });
    return statusCode;
  }

  protected override authorized(authorization: string | undefined): boolean {
    return this.app ? verifyAppJwt(authorization, this.app) : super.authorized(authorization);
  }

  private summary(delivery: GithubDelivery) {
    return {
      id: delivery.id,
      guid: delivery.guid,
      delivered_at: delivery.deliveredAt,
      redelivery: delivery.redelivery,
      duration: 0.01,
      status: delivery.statusCode === 0 ? "failed to connect" : "OK",
      status_code: delivery.statusCode,
      event: delivery.event,
      action: null,
      installation_id: null,
      repository_id: 1,
      throttled_at: null,
    };
  }

  protected async route(method: string, url: URL) {
    if (!url.pathname.startsWith(this.hookPath)) return { status: 404, body: { message: "Not Found" } };
    const rest = url.pathname.slice(this.hookPath.length);
    if (method === "GET" && rest === "") {
      const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 30), this.maxPerPage);
      const newestFirst = [...this.deliveries].reverse();
      const cursor = url.searchParams.get("cursor");
      const start = cursor === null ? 0 : newestFirst.findIndex((delivery) => String(delivery.id) === cursor);
      const page = newestFirst.slice(start, start + perPage);
      const next = newestFirst[start + perPage];
      const headers: Record<string, string> = next
        ? { link: `<${this.linkBase}${this.hookPath}?per_page=${perPage}&cursor=${next.id}>; rel="next"` }
        : {};
      return { status: 200, body: page.map((delivery) => this.summary(delivery)), headers };
    }
    const one = /^\/(\d+)(\/attempts)?$/.exec(rest);
    const delivery = one ? this.deliveries.find((candidate) => String(candidate.id) === one[1]) : undefined;
    if (!delivery) return { status: 404, body: { message: "Not Found" } };
    if (method === "GET" && !one![2]) {
      // GitHub keeps the payload parsed: the original bytes are not available.
      return {
        status: 200,
        body: {
          ...this.summary(delivery),
          url: this.ingestUrl,
          request: { headers: delivery.headers, payload: JSON.parse(delivery.body.toString()) },
          response: { headers: {}, payload: "" },
        },
      };
    }
    if (method === "POST" && one![2]) {
      void this.redeliver(delivery.guid);
      return { status: 202, body: {} };
    }
    return { status: 404, body: { message: "Not Found" } };
  }
}

export interface StripeEvent {
  id: string;
  object: "event";
  api_version: string;
  created: number;
  data: { object: Record<string, unknown> };
  livemode: boolean;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export class FakeStripe extends FakeApi {
  readonly events: StripeEvent[] = [];
  ingestUrl = "";
  /** Stripe allows limit up to 100; a smaller cap makes has_more pagination visible. */
  maxLimit = 2;
  private count = 0;

  constructor(
    secretKey: string,
    readonly webhookSecret: string,
  ) {
    super(secretKey);
  }

  /** Creates an event and sends it to the endpoint (fails while the server is down); returns its id and the status. */
  async send(type: string): Promise<{ id: string; status: number }> {
    this.count += 1;
    const event: StripeEvent = {
      id: `evt_fake${String(this.count).padStart(4, "0")}${randomUUID().replaceAll("-", "").slice(0, 8)}`,
      object: "event",
      api_version: "2024-06-20",
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: `pi_${this.count}`, object: "payment_intent", amount: 100 * this.count } },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
    this.events.push(event);
    return { id: event.id, status: await this.deliver(event) };
  }

  /** Stripe retries an event's webhook. */
  async deliver(event: StripeEvent): Promise<number> {
    const body = Buffer.from(JSON.stringify(event, null, 2));
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = createHmac("sha256", this.webhookSecret).update(`${timestamp}.${body.toString()}`).digest("hex");
    return deliver(
      this.ingestUrl,
      { "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": `t=${timestamp},v1=${signature}` },
      body,
    );
  }

  protected async route(method: string, url: URL) {
    if (method !== "GET" || url.pathname !== "/v1/events") return { status: 404, body: { error: { type: "invalid_request_error" } } };
    const limit = Math.min(Number(url.searchParams.get("limit") ?? 10), this.maxLimit);
    const gte = Number(url.searchParams.get("created[gte]") ?? 0);
    const newestFirst = [...this.events].reverse().filter((event) => event.created >= gte);
    const after = url.searchParams.get("starting_after");
    const before = url.searchParams.get("ending_before");
    if (after !== null && before !== null)
      return {
        status: 400,
        body: { error: { type: "invalid_request_error", message: "starting_after and ending_before are mutually exclusive" } },
      };
    const list = (page: StripeEvent[], hasMore: boolean) => ({
      status: 200,
      body: { object: "list", url: "/v1/events", has_more: hasMore, data: page },
    });
    if (before !== null) {
      // The page just newer than the cursor, still newest first; has_more: there are newer ones still.
      const end = newestFirst.findIndex((event) => event.id === before);
      if (end < 0) return { status: 404, body: { error: { type: "invalid_request_error", message: `No such event: '${before}'` } } };
      const start = Math.max(0, end - limit);
      return list(newestFirst.slice(start, end), start > 0);
    }
    const start = after === null ? 0 : newestFirst.findIndex((event) => event.id === after) + 1;
    return list(newestFirst.slice(start, start + limit), start + limit < newestFirst.length);
  }
}

/** A URL that serves the next body of a list (the last one again when it runs out), checking a header. */
export class FakePollTarget extends FakeApi {
  readonly bodies: string[] = [];
  served = 0;

  protected async route() {
    const body = this.bodies[Math.min(this.served, this.bodies.length - 1)];
    this.served += 1;
    return { status: 200, body: JSON.parse(body!) as unknown };
  }
}
