/*
 * Reads an SSE response as it arrives, keeping each event's own id and retry fields
 * (EventSource semantics), so tests can check framing exactly and wait for events.
 */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
  retry: number | undefined;
}

/** Parses complete SSE blocks, keeping each block's own id and retry fields. */
export function parseSseBlocks(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split("\n\n")) {
    if (!block.trim()) continue;
    let event = "message";
    let id: string | undefined;
    let retry: number | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
      else if (field === "retry") retry = Number(value);
    }
    if (data.length === 0 && id === undefined && retry === undefined) continue;
    events.push({ event, data: data.join("\n"), id, retry });
  }
  return events;
}

/** An open SSE response read incrementally; waitFor resolves once enough complete events came. */
export class SseReader {
  text = "";
  ended = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly response: Response,
    private readonly controller: AbortController,
  ) {
    void this.pump();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const controller = new AbortController();
    const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: controller.signal });
    return new SseReader(response, controller);
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      const reader = this.response.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.text += decoder.decode(value, { stream: true });
        for (const listener of [...this.listeners]) listener();
      }
    } catch {
      // aborted by close()
    }
    this.ended = true;
    for (const listener of [...this.listeners]) listener();
  }

  get events(): SseEvent[] {
    return parseSseBlocks(this.text.slice(0, this.text.lastIndexOf("\n\n") + 2));
  }

  messages(): SseEvent[] {
    return this.events.filter((event) => event.event === "message");
  }

  waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs = 5000): Promise<SseEvent[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate(this.events)) {
          clearTimeout(timer);
          this.listeners.delete(check);
          resolve(this.events);
        } else if (this.ended) {
          clearTimeout(timer);
          this.listeners.delete(check);
          reject(new Error(`stream ended; got:\n${this.text}`));
        }
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out; got:\n${this.text}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  close(): void {
    this.controller.abort();
  }
}
