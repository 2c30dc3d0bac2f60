/*
 * Webhook capture: any method, any sub-path, any content type under /h/<inbox-id>.
 * This hot path runs on bare node:http, ahead of the router, because it must look up
 * the inbox before reading the body (the size limit is per inbox) and because every
 * microsecond here is paid by every webhook. The sender gets its 2xx only after the
 * store says the event is committed.
 */
import { validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import { dedupeKeyOf, dedupeWindowMs } from "../core/dedupe.js";
import { TailhookError } from "../core/errors.js";
import { looksLikeInboxId, newEventId } from "../core/ids.js";
import { BODYLESS_STATUSES } from "../core/inbox-settings.js";
import type { CapturedRequest, InboxResponseSettings, StoredInbox } from "../core/types.js";
import type { AppendEventOptions, Store } from "../storage/store.js";
import type { RefusalLog } from "../core/verify/refusals.js";
import { readBody } from "./body.js";
import { answerVerification } from "./ingest-verify.js";
import { refusalReply, sendErrorRaw, sendFailureRaw } from "./errors.js";
import { noteFailure, noteInbox, noteRequestBytes, noteRoute } from "./request-log.js";
import type { Metrics } from "../metrics/metrics.js";

export const INGEST_PREFIX = "/h/";

export interface IngestTarget {
  inboxId: string;
  path: string;
  query: string;
}

/** Splits "/h/<id>/sub/path?query" without decoding, so the stored path is what was sent. */
export function parseIngestUrl(url: string): IngestTarget | undefined {
  if (!url.startsWith(INGEST_PREFIX)) return undefined;
  const questionMark = url.indexOf("?");
  const pathPart = questionMark === -1 ? url : url.slice(0, questionMark);
  const query = questionMark === -1 ? "" : url.slice(questionMark + 1);
  const rest = pathPart.slice(INGEST_PREFIX.length);
  const slash = rest.indexOf("/");
  const inboxId = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);
  return { inboxId, path, query };
}

export interface IngestDeps {
  store: Store;
  defaultMaxBodyBytes: number;
  /** Set while the server drains: replies then ask clients to close the connection. */
  isShuttingDown: () => boolean;
  logger: Logger;
  /** Where enforcing inboxes note the requests they refuse. */
  refusals: RefusalLog;
  metrics?: Metrics;
}

function notFound(): TailhookError {
  return new TailhookError("not_found", "no such inbox");
}

function tooLarge(limit: number): TailhookError {
  return new TailhookError("payload_too_large", `body exceeds this inbox's limit of ${limit} bytes`, { limit });
}

function refuseAndClose(req: IncomingMessage, res: ServerResponse, error: TailhookError): void {
  // The rest of the body is not read: ask the client to close, and drop the socket
  // once the reply is out.
  sendErrorRaw(res, refusalReply(error), { connection: "close" });
  res.once("finish", () => req.socket.destroySoon());
}

/**
 * The event is committed: whatever goes wrong writing the inbox's own reply (settings an
 * older version accepted, that Node cannot send), the sender still gets a 2xx.
 */
function sendAck(res: ServerResponse, inbox: StoredInbox, id: string, seq: number, closeConnection: boolean, logger: Logger): void {
  const connection: Record<string, string> = closeConnection ? { connection: "close" } : {};
  const custom = inbox.settings.response;
  if (custom) {
    try {
      sendConfiguredReply(res, custom, connection);
      return;
    } catch (error) {
      logger.error({ err: error, inbox: inbox.id, seq }, "the inbox's configured reply cannot be sent; sending the default ack instead");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.statusMessage = "";
    }
  }
  const ack = JSON.stringify({ ok: true, id, seq });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(ack), ...connection });
  res.end(ack);
}

function sendConfiguredReply(res: ServerResponse, reply: InboxResponseSettings, connection: Record<string, string>): void {
  // Checked before writing, so a bad header cannot leave a half-set status behind.
  for (const [name, value] of Object.entries(reply.headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  }
  if (BODYLESS_STATUSES.has(reply.status)) {
    // No Content-Length and no body, or the connection's next reply would be misread.
    res.writeHead(reply.status, { ...reply.headers, ...connection });
    res.end();
    return;
  }
  // A Buffer, not a string: Node writes a string body in one piece with the head, in the
  // body's UTF-8, which would turn a Latin-1 header value into different bytes.
  const body = Buffer.from(reply.body, "utf8");
  res.writeHead(reply.status, { ...reply.headers, "content-length": body.length, ...connection });
  res.end(body);
}

/**
 * The signature check (verified first, in the store: in enforce mode a forged request
 * cannot claim a delivery id) and the delivery id to dedupe on, when the inbox asks for them.
 */
function appendOptions(inbox: StoredInbox, request: CapturedRequest): AppendEventOptions | undefined {
  const { verify, dedupe } = inbox.settings;
  const key = dedupe && dedupeKeyOf(dedupe, request);
  if (!verify && key === undefined) return undefined;
  const options: AppendEventOptions = {};
  if (verify) options.verify = verify;
  if (key !== undefined) options.dedupe = { key, windowMs: dedupeWindowMs(dedupe!) };
  return options;
}

export function createIngestHandler(deps: IngestDeps) {
  return async function handleIngest(req: IncomingMessage, res: ServerResponse, target: IngestTarget): Promise<void> {
    const receivedAt = Date.now();
    noteRoute(req, "/h/:inbox");
    const wellFormed = looksLikeInboxId(target.inboxId);
    if (wellFormed) noteInbox(req, target.inboxId);
    let committed = false;
    try {
      const inbox = wellFormed ? await deps.store.getInbox(target.inboxId) : undefined;
      if (!inbox) {
        refuseAndClose(req, res, notFound());
        return;
      }
      const limit = inbox.settings.maxBodyBytes ?? deps.defaultMaxBodyBytes;
      const declared = Number(req.headers["content-length"] ?? 0);
      if (declared > limit) {
        refuseAndClose(req, res, tooLarge(limit));
        return;
      }
      let body: Buffer;
      try {
        body = await readBody(req, limit, () => tooLarge(limit));
        noteRequestBytes(req, body.length);
      } catch (error) {
        refuseAndClose(req, res, error as TailhookError);
        return;
      }
      const request: CapturedRequest = {
        id: newEventId(),
        receivedAt,
        method: req.method ?? "GET",
        path: target.path,
        query: target.query,
        rawHeaders: req.rawHeaders,
        remoteAddr: req.socket.remoteAddress ?? "",
        body,
      };
      const result = await deps.store.appendEvent(inbox.streamId, request, appendOptions(inbox, request));
      if (result.status === "not_found") {
        sendErrorRaw(res, refusalReply(notFound()));
        return;
      }
      if (answerVerification(req, res, inbox, request, result, deps.refusals, deps.metrics)) return;
      committed = true;
      // A duplicate delivery is answered as its first one was: that event's id and seq.
      const ackId = result.status === "duplicate" ? result.id : request.id;
      sendAck(res, inbox, ackId, result.seq, deps.isShuttingDown(), deps.logger);
    } catch (error) {
      if (committed) {
        // The event is stored: never answer it with an error. The sender retries on the
        // dropped connection (and its dedupe id, if any, finds the first delivery).
        noteFailure(req, error);
        res.destroy();
        return;
      }
      // The request's log line carries the cause; the sender gets 503 (store) or 500 (bug).
      sendFailureRaw(req, res, error, deps.store);
    }
  };
}
