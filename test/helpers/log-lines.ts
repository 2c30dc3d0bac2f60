/* A real pino logger that keeps its JSON lines, for tests that check what a request logged. */
import { Writable } from "node:stream";
import pino from "pino";
import { expect } from "vitest";

export interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  status?: number;
  err?: { type: string; message: string; stack: string };
}

export function capturingLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString("utf8").split("\n")) if (text !== "") lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), lines };
}

/** The request line of this reply (by its x-request-id), once it was written. */
export async function logLineOf(lines: LogLine[], response: Response): Promise<LogLine> {
  const reqId = response.headers.get("x-request-id");
  await expect.poll(() => lines.find((line) => line.reqId === reqId), { timeout: 10_000 }).toBeDefined();
  return lines.find((line) => line.reqId === reqId)!;
}
