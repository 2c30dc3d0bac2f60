/*
 * Redelivery on demand: the events of a seq range, in order, to a target, with the
 * same request shape and retry policy as `forward`, but no consumer is moved.
 */
import type { TailhookClient } from "../client/client.js";
import { formatOffset } from "../core/offsets.js";
import { deliverUntilSettled, type DeliveryReport } from "./forwarder.js";
import type { SigningKey } from "./resign.js";
import type { On4xx } from "./retry-policy.js";

export interface ReplayOptions {
  client: TailhookClient;
  inboxId: string;
  target: URL;
  fromSeq: number;
  toSeq: number;
  on4xx?: On4xx;
  timeoutMs?: number;
  /** Re-sign every delivery with this Standard Webhooks key (see resign.ts). */
  signing?: SigningKey;
  signal?: AbortSignal;
  onDelivery?: (report: DeliveryReport) => void;
}

export type ReplayResult =
  | { status: "done"; delivered: number; skipped: number }
  | { status: "stopped"; delivered: number; seq: number; httpStatus: number }
  | { status: "aborted"; delivered: number };

export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  let delivered = 0;
  let skipped = 0;
  const controller = new AbortController();
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  const events = options.client.tail(options.inboxId, { from: formatOffset(options.fromSeq - 1), signal: controller.signal });
  try {
    for await (const item of events) {
      // A read from an offset without onGone "snapshot" yields only events.
      if (item.kind !== "event") continue;
      const { event } = item;
      if (event.seq > options.toSeq) break;
      const { verdict, status } = await deliverUntilSettled({ ...options, on4xx: options.on4xx ?? "stop" }, event);
      if (options.signal?.aborted) return { status: "aborted", delivered };
      if (verdict === "stop") return { status: "stopped", delivered, seq: event.seq, httpStatus: status };
      if (verdict === "skip") skipped++;
      else delivered++;
      if (event.seq >= options.toSeq) break;
    }
  } finally {
    controller.abort();
  }
  return options.signal?.aborted ? { status: "aborted", delivered } : { status: "done", delivered, skipped };
}
