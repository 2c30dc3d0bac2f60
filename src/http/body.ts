/*
 * Request bodies on bare node:http: read with a limit, or drop what is left of one we
 * refused. Shared by webhook ingest and stream appends.
 */
import type { IncomingMessage } from "node:http";
import { TailhookError } from "../core/errors.js";

/** Collects the body, refusing it as soon as it passes the limit (nothing past it is kept). */
export function readBody(req: IncomingMessage, limit: number, tooLarge: () => TailhookError): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onAbort = () => {
      cleanup();
      reject(new TailhookError("bad_request", "the request body was cut off"));
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("aborted", onAbort);
      req.off("error", onAbort);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("aborted", onAbort);
    req.on("error", onAbort);
  });
}

/** How much of a refused body is read and dropped so that the client gets to see our reply. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;
const DISCARD_TIMEOUT_MS = 10_000;

/**
 * A client still sending a body we refused would get a reset instead of our reply:
 * read and drop the rest (bounded). True when the body ended, so the connection can
 * carry on; otherwise the caller answers and closes it.
 */
export function discardBody(req: IncomingMessage): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = () => {
      clearTimeout(timer);
      req.off("data", onData);
      resolve(req.readableEnded);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DISCARD_LIMIT_BYTES) finish();
    };
    const timer = setTimeout(finish, DISCARD_TIMEOUT_MS);
    req.on("data", onData).once("end", finish).once("error", finish).once("close", finish);
    req.resume();
  });
}
