/*
 * smee.io's channel format at GET /smee/<inbox-id>, so that the unmodified smee-client
 * (`smee --url <smeeUrl> --target http://localhost:3000/`) forwards an inbox's events
 * to a local server. Unlike smee.io, positions are durable: each event's SSE id is its
 * offset, and the Last-Event-ID that EventSource sends on reconnect resumes right after
 * the last event received, across dropped connections and server restarts.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Type from "typebox";
import { buildEnvelope } from "../../core/capture.js";
import { TailhookError } from "../../core/errors.js";
import { formatOffset, parseOffset } from "../../core/offsets.js";
import { toSmeePayload } from "../../core/smee-payload.js";
import type { StoredMessage, StreamInfo } from "../../core/types.js";
import { requestToken } from "../auth.js";
import { InboxParams } from "../schemas/common.js";
import type { HttpContext } from "../context.js";
import { abortOnClose, SSE_HEADERS, writeAndDrain } from "../sse.js";
import { authorizeInboxStream } from "../stream-reads.js";

const SmeeQuery = Type.Object({
  token: Type.Optional(Type.String()),
  from: Type.Optional(Type.String({ description: "-1, now or an offset (default: the tail, like smee.io)" })),
});

/** Sent as `retry:` so EventSource reconnects after 1 s instead of its default 3 s. */
const RETRY_MS = 1000;
const PING = "event: ping\ndata: {}\n\n";
const SMEE_HEADERS = { ...SSE_HEADERS, "x-content-type-options": "nosniff" };

/** The URL to give smee-client as `--url`; only the creator of an inbox knows its token. */
export function smeeUrlFor(baseUrl: string, inboxId: string, token: string): string {
  return `${baseUrl}/smee/${encodeURIComponent(inboxId)}?token=${encodeURIComponent(token)}`;
}

function messageEvent(message: StoredMessage): string {
  return `id: ${formatOffset(message.seq)}\ndata: ${JSON.stringify(toSmeePayload(buildEnvelope(message)))}\n\n`;
}

/** Retention removed events the client had not seen; its id moves the resume point past them. */
function lostEvent(afterSeq: number, earliestSeq: number): string {
  const notice = {
    requestedOffset: formatOffset(afterSeq),
    earliestOffset: formatOffset(earliestSeq),
    lostEvents: earliestSeq - afterSeq,
  };
  return `id: ${formatOffset(earliestSeq)}\nevent: lost\ndata: ${JSON.stringify(notice)}\n\n`;
}

/**
 * Where a connection starts: after the client's Last-Event-ID when it is an offset we
 * could have issued, else at `from` (`-1`, `now` or an offset; the tail by default, as
 * smee.io). A foreign Last-Event-ID is ignored rather than refused: EventSource gives
 * up for good on any status but 200.
 */
function startAfter(stream: StreamInfo, lastEventId: string | undefined, from: string | undefined): number {
  const resumed = lastEventId === undefined ? undefined : parseOffset(lastEventId.trim());
  if (resumed?.kind === "after" && resumed.seq <= stream.tailSeq) return resumed.seq;
  if (from === undefined) return stream.tailSeq;
  const offset = parseOffset(from);
  if (!offset) throw new TailhookError("bad_request", `malformed from: ${from}`);
  if (offset.kind === "start") return stream.firstSeq - 1;
  if (offset.kind === "now") return stream.tailSeq;
  if (offset.seq > stream.tailSeq) throw new TailhookError("bad_request", "from is beyond the end of the stream");
  // Behind retention is not refused: the stream opens with a `lost` event instead.
  return offset.seq;
}

/** An empty 200 stream: EventSource retries after it, where an error status would end it for good. */
function askToRetry(ctx: HttpContext, reply: FastifyReply, error: unknown): void {
  ctx.logger.warn({ err: error }, "smee stream could not start; asking the client to retry");
  reply.hijack();
  reply.raw.writeHead(200, SMEE_HEADERS);
  reply.raw.end(`retry: ${RETRY_MS}\n: try again\n\n`);
}

async function streamEvents(ctx: HttpContext, reply: FastifyReply, stream: StreamInfo, startSeq: number): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, SMEE_HEADERS);
  ctx.metrics.trackReader("smee", res);
  const signal = abortOnClose(res);
  const pingMs = ctx.config.sseKeepAliveMs * 2;
  let nextPing = Date.now() + pingMs;
  const pingIfDue = async () => {
    if (Date.now() < nextPing) return;
    await writeAndDrain(res, PING);
    nextPing = Date.now() + pingMs;
  };
  const idleMs = () => Math.max(1, nextPing - Date.now());
  let afterSeq = startSeq;
  try {
    // The ready event carries the start offset too: a client that reconnects before
    // its first event resumes from here, not from a "now" that moved meanwhile.
    await writeAndDrain(res, `retry: ${RETRY_MS}\nid: ${formatOffset(afterSeq)}\nevent: ready\ndata: {}\n\n`);
    let resumeAt: number | undefined = afterSeq;
    while (resumeAt !== undefined) {
      const items = ctx.live.follow(stream.id, { afterSeq: resumeAt, idleMs, signal });
      resumeAt = undefined;
      for await (const item of items) {
        if (item.kind === "page") {
          await writeAndDrain(res, item.messages.map(messageEvent).join(""));
          afterSeq = item.lastSeq;
        } else if (item.kind === "gone") {
          // Behind retention: say what was lost and go on from the earliest event.
          await writeAndDrain(res, lostEvent(afterSeq, item.earliestSeq));
          afterSeq = resumeAt = item.earliestSeq;
          break;
        } else if (item.kind !== "up-to-date" && item.kind !== "idle") {
          break; // deleted (the reconnect is refused and the client stops), closed or shutdown
        }
        await pingIfDue();
      }
    }
  } catch (error) {
    // Store trouble mid-stream: end it; the client reconnects with its Last-Event-ID. A bug is logged loud.
    ctx.logger[ctx.store.isFailure(error) ? "debug" : "error"]({ err: error }, "smee stream ended early");
  }
  res.end();
}

export function registerSmeeRoutes(fastify: FastifyInstance, ctx: HttpContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // Not in /openapi.json (no tags): an event stream, not JSON. The schemas only type the URL.
  app.get("/smee/:id", { schema: { params: InboxParams, querystring: SmeeQuery } }, async (request, reply) => {
    const { id } = request.params;
    const { query } = request;
    const token = requestToken(request);
    let stream: StreamInfo;
    try {
      ({ stream } = await authorizeInboxStream(ctx, token, id));
    } catch (error) {
      // Refusals (401, 404) and bugs (500) are answered; store trouble asks the client to come back.
      if (error instanceof TailhookError || !ctx.store.isFailure(error)) throw error;
      return askToRetry(ctx, reply, error);
    }
    const lastEventId = request.headers["last-event-id"];
    const startSeq = startAfter(stream, typeof lastEventId === "string" ? lastEventId : undefined, query.from);
    return streamEvents(ctx, reply, stream, startSeq);
  });
}
