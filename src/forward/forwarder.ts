/*
 * At-least-once, in-order delivery of an inbox's events to a target URL. Events are
 * read as a server-side consumer; each one is delivered (and retried) until the
 * target answers 2xx, and only then committed, so a crash, a restart or a dead
 * network can repeat what was in flight but never lose an event.
 */
import type { LossNotice, ResetMarker, TailhookClient } from "../client/client.js";
import { TailhookGoneError } from "../client/errors.js";
import type { EventEnvelope } from "../core/types.js";
import { AckCommitter } from "./ack-committer.js";
import { buildDelivery } from "./delivery.js";
import { judge, retryDelay, type AttemptOutcome, type On4xx, type Verdict } from "./retry-policy.js";
import type { SigningKey } from "./resign.js";
import { sendDelivery } from "./send.js";

export interface DeliveryReport {
  seq: number;
  method: string;
  path: string;
  attempt: number;
  outcome: AttemptOutcome;
  verdict: Verdict;
  ms: number;
  /** Set when another attempt follows. */
  retryInMs?: number;
  /** A key-frame delivery: the entity's latest event as of the key frame (see docs/recovery.md). */
  snapshot?: boolean;
}

/**
 * What a forward does when it fell behind retention: "snapshot" delivers the inbox's key
 * frame (the latest event per entity), then goes on after it; "earliest" goes on from
 * the earliest retained event; "stop" returns `{status: "gone"}`.
 */
export type ForwardOnGone = "snapshot" | "earliest" | "stop";

export interface ForwardOptions {
  client: TailhookClient;
  inboxId: string;
  target: URL;
  /** Server-side consumer whose committed offset says where to resume. */
  consumer: string;
  on4xx?: On4xx;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  /** Re-sign every delivery with this Standard Webhooks key (see resign.ts). */
  signing?: SigningKey;
  /** Delivered events that may wait for their commit before delivery pauses. */
  maxUnacked?: number;
  signal?: AbortSignal;
  onDelivery?: (report: DeliveryReport) => void;
  onTrouble?: (message: string) => void;
  onLoss?: (notice: LossNotice) => void;
  /** Default "earliest". */
  onGone?: ForwardOnGone;
  /** A key frame begins (its events follow, delivered with X-Tailhook-Snapshot: 1). */
  onKeyFrame?: (marker: ResetMarker) => void;
  /** The key frame was delivered, `events` of them; the events after `offset` follow. */
  onKeyFrameEnd?: (offset: string, events: number) => void;
}

export type ForwardResult =
  | { status: "aborted"; delivered: number }
  | { status: "stopped"; delivered: number; seq: number; httpStatus: number }
  | { status: "gone"; delivered: number; requestedOffset: string; earliestOffset: string | undefined; snapshot?: string };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Delivers one event, retrying as the policy says, until it is delivered, skipped or stopped. */
export async function deliverUntilSettled(
  options: Pick<ForwardOptions, "inboxId" | "target" | "on4xx" | "timeoutMs" | "signal" | "onDelivery" | "signing">,
  event: EventEnvelope,
  snapshot = false,
): Promise<{ verdict: Verdict; status: number }> {
  for (let attempt = 1; ; attempt++) {
    const delivery = buildDelivery(event, options.target, options.inboxId, attempt, options.signing, snapshot);
    const started = performance.now();
    const outcome = await sendDelivery(delivery, options.timeoutMs ?? 30_000, options.signal);
    const verdict = judge(outcome, options.on4xx ?? "retry");
    const report: DeliveryReport = {
      seq: event.seq,
      method: event.method,
      path: `${event.path || "/"}${event.query ? `?${event.query}` : ""}`,
      attempt,
      outcome,
      verdict,
      ms: Math.round(performance.now() - started),
      ...(snapshot ? { snapshot } : {}),
    };
    const status = outcome.kind === "response" ? outcome.status : 0;
    if (verdict !== "retry" || options.signal?.aborted) {
      options.onDelivery?.(report);
      return { verdict, status };
    }
    report.retryInMs = retryDelay(attempt, outcome);
    options.onDelivery?.(report);
    await sleep(report.retryInMs, options.signal);
    if (options.signal?.aborted) return { verdict: "retry", status };
  }
}

export async function forward(options: ForwardOptions): Promise<ForwardResult> {
  const trouble = options.onTrouble ?? (() => undefined);
  const acks = new AckCommitter(options.client, options.inboxId, options.consumer, (error) =>
    trouble(`could not commit the consumer's offset yet (${(error as Error).message}); will retry`),
  );
  let delivered = 0;
  const onGone = options.onGone ?? "earliest";
  const items = options.client.tail(options.inboxId, {
    consumer: options.consumer,
    signal: options.signal,
    onRetry: (error, delayMs) => trouble(`reading events failed (${describe(error)}); retrying in ${delayMs} ms`),
    onLoss: options.onLoss,
    onGone: onGone === "stop" ? "throw" : onGone,
  });
  let keyFrameEvents = 0;
  try {
    for await (const item of items) {
      if (item.kind === "reset") {
        keyFrameEvents = 0;
        options.onKeyFrame?.(item);
        continue;
      }
      if (item.kind === "snapshot-end") {
        // Everything up to X is now reflected at the target: commit X itself.
        options.onKeyFrameEnd?.(item.offset, keyFrameEvents);
        acks.commit(item.offset);
        continue;
      }
      const snapshot = item.kind === "snapshot";
      const { verdict, status } = await deliverUntilSettled(options, item.event, snapshot);
      if (options.signal?.aborted) break;
      if (verdict === "stop") return { status: "stopped", delivered, seq: item.event.seq, httpStatus: status };
      if (verdict === "delivered") delivered++;
      if (snapshot) {
        // A key frame's events come in entity order, not seq order: only its end is a resume point.
        keyFrameEvents++;
        continue;
      }
      acks.commit(item.offset);
      await acks.waitUntilUnackedAtMost(options.maxUnacked ?? 100);
    }
  } catch (error) {
    if (!(error instanceof TailhookGoneError) || onGone !== "stop") throw error;
    const gone = { status: "gone", delivered, requestedOffset: error.requestedOffset, earliestOffset: error.earliestOffset } as const;
    return error.snapshot === undefined ? gone : { ...gone, snapshot: error.snapshot };
  } finally {
    // Commit what was delivered before going; bounded so a dead server cannot hold us.
    const give = new AbortController();
    const timer = setTimeout(() => give.abort(), 5000);
    await acks.flush(give.signal);
    clearTimeout(timer);
  }
  return { status: "aborted", delivered };
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code ?? (error as Error).message;
}
