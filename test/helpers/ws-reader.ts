/*
 * Real `ws` clients for the WebSocket tests: a recorder of every frame, ping and the
 * close that waits for conditions on them, the /v1/ws/stream/<name> reader built on it,
 * and what a refused upgrade answered.
 */
import WebSocket from "ws";
import { waitUntil } from "./wait.js";

export interface StreamFrame {
  type: "message" | "snapshot" | "up-to-date" | "closed" | "gone";
  offset?: string;
  message?: unknown;
  body?: string;
  bodyEncoding?: "utf8" | "base64";
  nextOffset?: string;
  done?: boolean;
  messages?: unknown[];
  earliestOffset?: string;
  snapshot?: string;
}

/** Records every JSON frame (as F), ping and the close of one socket. */
export class FrameRecorder<F extends { type: string }> {
  readonly frames: F[] = [];
  pings = 0;
  closed: { code: number; reason: string } | undefined;
  readonly socket: WebSocket;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, options);
    this.socket.on("message", (data) => this.frames.push(JSON.parse(String(data)) as F));
    this.socket.on("ping", () => this.pings++);
    this.socket.on("close", (code, reason) => (this.closed = { code, reason: String(reason) }));
    this.socket.on("error", () => undefined);
  }

  of(type: F["type"]): F[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  /** Resolves once `check` holds; fails with what was seen if it does not within the time. */
  until(check: (reader: this) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    return waitUntil(
      () => check(this),
      what,
      timeoutMs,
      () => `; ${this.seen()}`,
    );
  }

  /** What a timed-out wait reports. */
  protected seen(): string {
    return `${this.frames.length} frames, closed ${JSON.stringify(this.closed)}`;
  }
}

export class StreamReader extends FrameRecorder<StreamFrame> {
  /** Where a reconnect resumes: the last message's offset, or the last snapshot page's next offset. */
  get resumeOffset(): string {
    const last = this.frames.filter((frame) => frame.type === "message" || frame.type === "snapshot").at(-1)!;
    return last.type === "snapshot" ? last.nextOffset! : last.offset!;
  }
}

export interface UpgradeRefusal {
  status: number;
  contentType: string | undefined;
  body: { error: Record<string, string> };
}

/** Connects and expects the upgrade to be refused: the HTTP status, content type and JSON body. */
export function upgradeRefusal(url: string, options: WebSocket.ClientOptions = {}): Promise<UpgradeRefusal> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.on("open", () => reject(new Error("the upgrade was accepted")));
    socket.on("error", () => undefined);
    socket.on("unexpected-response", (_request, response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as UpgradeRefusal["body"];
        resolve({ status: response.statusCode!, contentType: response.headers["content-type"], body });
      });
    });
  });
}

/** A refused upgrade's status and error code. */
export async function refusedUpgrade(url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number; code: string }> {
  const { status, body } = await upgradeRefusal(url, options);
  return { status, code: body.error.code! };
}
