/*
 * A webhook target for forward/replay tests, in the test process: it records every
 * request it read completely (method, raw URL, raw headers, exact body bytes, when,
 * and which forwarder "generation" the test says is running) and answers by a
 * switchable mode — 200, flaky (503/500/connection reset, one 429 on demand), slow —
 * or a custom rule. It can go down (stop listening and drop every connection) and
 * come back on the same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface Received {
  /** Arrival order, from 0. */
  index: number;
  at: number;
  generation: number;
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
  /** X-Tailhook-Seq and X-Tailhook-Attempt, when present once. */
  seq: number | undefined;
  attempt: number | undefined;
  /** What the target did: the status it answered, or "reset" (socket destroyed, or gone before a delayed answer). */
  answer: number | "reset";
}

export type Answer = number | "reset" | { status: number; headers?: Record<string, string>; delayMs?: number };
export type Mode = "ok" | "flaky" | "slow" | ((request: Received) => Answer);

export interface FlakyOdds {
  status503: number;
  status500: number;
  reset: number;
}

/** All values of a header in a raw header list, by case-insensitive name. */
export function headerValues(rawHeaders: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === name.toLowerCase()) values.push(rawHeaders[i + 1]!);
  }
  return values;
}

function single(rawHeaders: string[], name: string): number | undefined {
  const values = headerValues(rawHeaders, name);
  return values.length === 1 && /^\d+$/.test(values[0]!) ? Number(values[0]) : undefined;
}

export class Target {
  readonly received: Received[] = [];
  mode: Mode = "ok";
  generation = 0;
  slowMs = 300;
  flakyOdds: FlakyOdds = { status503: 0.3, status500: 0.06, reset: 0.06 };
  /**
   * Flaky mode fails one event at most this many times in a row, then takes it: the
   * forwarder's backoff doubles per failure, and a longer run (8 in a row at these odds,
   * about 1 in 1,000 events) once pushed a single event's retry past a test's 30 s wait.
   */
  maxFailuresInARow = 4;
  private readonly failuresInARow = new Map<number | undefined, number>();
  /** The next request in any mode is answered 429 with Retry-After: 1, once. */
  pending429 = false;
  private listening = false;
  private readonly server: Server;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(public port: number) {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  static async start(port = 0): Promise<Target> {
    const target = new Target(port);
    await target.up();
    return target;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests that carried X-Tailhook-Seq = seq, in arrival order. */
  forSeq(seq: number): Received[] {
    return this.received.filter((r) => r.seq === seq);
  }

  private answerFor(request: Received): Answer {
    if (this.pending429) {
      this.pending429 = false;
      return { status: 429, headers: { "retry-after": "1" } };
    }
    const mode = this.mode;
    if (typeof mode === "function") return mode(request);
    if (mode === "slow") return { status: 200, delayMs: this.slowMs };
    if (mode === "flaky") {
      const failure = this.flakyFailure();
      const failures = failure === undefined ? 0 : (this.failuresInARow.get(request.seq) ?? 0) + 1;
      if (failure !== undefined && failures <= this.maxFailuresInARow) {
        this.failuresInARow.set(request.seq, failures);
        return failure;
      }
      this.failuresInARow.delete(request.seq);
    }
    return 200;
  }

  private flakyFailure(): Answer | undefined {
    const roll = Math.random();
    const { status503, status500, reset } = this.flakyOdds;
    if (roll < status503) return 503;
    if (roll < status503 + status500) return 500;
    if (roll < status503 + status500 + reset) return "reset";
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", () => undefined);
    req.on("end", () => {
      const request: Received = {
        index: this.received.length,
        at: Date.now(),
        generation: this.generation,
        method: req.method ?? "",
        url: req.url ?? "",
        rawHeaders: [...req.rawHeaders],
        body: Buffer.concat(chunks),
        seq: single(req.rawHeaders, "x-tailhook-seq"),
        attempt: single(req.rawHeaders, "x-tailhook-attempt"),
        answer: "reset",
      };
      this.received.push(request);
      const answer = this.answerFor(request);
      if (answer === "reset") {
        req.socket.destroy();
        return;
      }
      const { status, headers = {}, delayMs = 0 } = typeof answer === "number" ? { status: answer } : answer;
      const reply = () => {
        if (res.destroyed) return;
        request.answer = status;
        res.writeHead(status, { "content-type": "text/plain", ...headers });
        res.end(status < 300 ? "thanks" : `status ${status}`);
      };
      if (delayMs === 0) return reply();
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        reply();
      }, delayMs);
      this.timers.add(timer);
    });
  }

  /** Stops listening and drops every connection, keeping the port number. */
  async down(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** Listens again, on the same port as before (any free port the first time). */
  up(): Promise<void> {
    if (this.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", () => {
        this.server.off("error", reject);
        const address = this.server.address();
        if (typeof address === "object" && address) this.port = address.port;
        this.listening = true;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return this.down();
  }
}
