/* A real `ws` client for /v1/ws/stream/<name>: records every frame and the close, and waits for conditions on them. */
import WebSocket from "ws";

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

export class StreamReader {
  readonly frames: StreamFrame[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly socket: WebSocket;
  private readonly listeners = new Set<() => void>();

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, options);
    this.socket.on("message", (data) => {
      this.frames.push(JSON.parse(String(data)) as StreamFrame);
      this.changed();
    });
    this.socket.on("close", (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.changed();
    });
    this.socket.on("error", () => undefined);
  }

  of(type: StreamFrame["type"]): StreamFrame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  /** Where a reconnect resumes: the last message's offset, or the last snapshot page's next offset. */
  get resumeOffset(): string {
    const last = this.frames.filter((frame) => frame.type === "message" || frame.type === "snapshot").at(-1)!;
    return last.type === "snapshot" ? last.nextOffset! : last.offset!;
  }

  until(check: (reader: StreamReader) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out waiting for ${what}; ${this.frames.length} frames, closed ${JSON.stringify(this.closed)}`));
      }, timeoutMs);
      const listener = () => {
        if (!check(this)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve();
      };
      this.listeners.add(listener);
    });
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** Connects and expects the upgrade to be refused: the HTTP status and the JSON error. */
export function refusedUpgrade(url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.on("open", () => reject(new Error("the upgrade was accepted")));
    socket.on("error", () => undefined);
    socket.on("unexpected-response", (_request, response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { error: { code: string } };
        resolve({ status: response.statusCode!, code: body.error.code });
      });
    });
  });
}
