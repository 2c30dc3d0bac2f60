/*
 * One connected WebSocket reader: follows its stream (LiveStreams.follow, from a seq or
 * a snapshot) and writes each item as a frame, with back-pressure, pings for dead
 * peers, and a close code taken from the error table for every end that is a failure.
 */
import { WebSocket } from "ws";
import { ERROR_TABLE } from "../../core/errors.js";
import type { StoredMessage } from "../../core/types.js";
import type { FollowStart } from "../../live/follow.js";
import type { HttpContext } from "../context.js";
import { closeCodeOf } from "../errors.js";
import type { FrameFormat } from "./frames.js";

/** Past this many bytes queued on a socket, the next page waits until they are written. */
const HIGH_WATER_BYTES = 512 * 1024;
/** A client that answers none of this many pings in a row is dropped. */
const MAX_UNANSWERED_PINGS = 2;
/** How long a closing socket may take to answer our close frame before it is cut. */
const CLOSE_GRACE_MS = 2000;

// Ends that are failures take their close code from the error table, as HTTP replies their status.
const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = ERROR_TABLE.shutting_down.close;
const CLOSE_GONE = ERROR_TABLE.gone.close;
const CLOSE_DELETED = ERROR_TABLE.not_found.close;

/** Why a connection's read loop stopped. */
type LoopEnd =
  | { end: "client_closed" }
  | { end: "shutdown" }
  | { end: "gone"; earliestSeq: number }
  | { end: "deleted" }
  | { end: "closed"; seq: number }
  | { end: "unresponsive" }
  | { end: "failed"; error: unknown };

/** Where a connection starts: following from a position, or at once "gone" (the offset is behind retention). */
export type ConnectionStart = FollowStart | { goneAt: number };

export interface ConnectionOptions {
  streamId: number;
  start: ConnectionStart;
  frames: FrameFormat;
  /** Where a snapshot of the stream can be read, for the gone frame; null without key frames. */
  snapshotHint: string | null;
  /** What the close reason calls the stream ("inbox" on inbox sockets). */
  noun: string;
}

/** Resolves once `text` was handed to the socket, or failed to be, or the connection ended. */
function sendText(socket: WebSocket, text: string, done: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      done.removeEventListener("abort", finish);
      resolve();
    };
    done.addEventListener("abort", finish, { once: true });
    socket.send(text, finish);
  });
}

export class StreamConnection {
  private readonly done = new AbortController();
  private unansweredPings = 0;

  constructor(
    private readonly ctx: HttpContext,
    private readonly socket: WebSocket,
    private readonly options: ConnectionOptions,
  ) {
    socket.once("close", () => this.done.abort());
    socket.on("pong", () => (this.unansweredPings = 0));
    socket.on("error", (error) => ctx.logger.debug({ err: error }, "WebSocket error"));
  }

  async run(): Promise<void> {
    const { start, frames } = this.options;
    const outcome: LoopEnd = "goneAt" in start ? { end: "gone", earliestSeq: start.goneAt } : await this.readLoop(start);
    switch (outcome.end) {
      case "client_closed":
        return;
      case "shutdown":
        return this.close(CLOSE_GOING_AWAY, "server shutting down");
      case "deleted":
        return this.close(CLOSE_DELETED, `${this.options.noun} deleted`);
      case "closed": {
        const frame = frames.closed(outcome.seq);
        if (frame !== null) this.socket.send(frame);
        return this.close(CLOSE_NORMAL, "stream closed");
      }
      case "unresponsive":
        this.socket.terminate();
        return;
      case "gone":
        this.socket.send(frames.gone(outcome.earliestSeq, this.options.snapshotHint));
        return this.close(CLOSE_GONE, "offset behind retention");
      case "failed":
        this.ctx.logger.error({ err: outcome.error }, "WebSocket read failed");
        return this.close(closeCodeOf(outcome.error, this.ctx.store), "read failed");
    }
  }

  /** Sends a close frame once; a peer that does not answer it in time is cut off. */
  close(code: number, reason: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.done.abort();
    this.socket.close(code, reason);
    const force = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    this.socket.once("close", () => clearTimeout(force));
  }

  private async readLoop(start: FollowStart): Promise<LoopEnd> {
    const { frames, streamId } = this.options;
    const idleMs = () => this.ctx.config.sseKeepAliveMs;
    try {
      for await (const item of this.ctx.live.follow(streamId, { ...start, idleMs, signal: this.done.signal })) {
        switch (item.kind) {
          case "snapshot":
            await this.sendFrames([frames.snapshot(item.messages, item.nextOffset, item.done, item.asOfSeq)]);
            break;
          case "page":
            await this.sendFrames(item.messages.map((message: StoredMessage) => frames.message(message, item.stream.horizonSeq)));
            break;
          case "up-to-date":
            this.socket.send(frames.upToDate(item.seq));
            break;
          case "idle":
            if (this.unansweredPings >= MAX_UNANSWERED_PINGS) return { end: "unresponsive" };
            this.unansweredPings++;
            this.socket.ping();
            break;
          case "gone":
            return { end: "gone", earliestSeq: item.earliestSeq };
          case "closed":
            return { end: "closed", seq: item.seq };
          case "deleted":
          case "shutdown":
            return { end: item.kind };
        }
      }
    } catch (error) {
      if (!this.done.signal.aborted) return { end: "failed", error };
    }
    return this.ctx.waiters.stopped.aborted ? { end: "shutdown" } : { end: "client_closed" };
  }

  /** Queues frames; if the socket is backed up, waits until the last has been written out. */
  private async sendFrames(texts: string[]): Promise<void> {
    let last: Promise<void> | undefined;
    texts.forEach((text, index) => {
      if (index < texts.length - 1) this.socket.send(text);
      else last = sendText(this.socket, text, this.done.signal);
    });
    if (this.socket.bufferedAmount >= HIGH_WATER_BYTES) await last;
  }
}
