/* What the routes share: the store, the access rules, the wake-ups and the settings. */
import type { Logger } from "pino";
import type { ServerConfig } from "../config.js";
import type { LiveStreams } from "../live/follow.js";
import type { StreamWaiters } from "../live/stream-waiters.js";
import type { Store } from "../storage/store.js";
import type { Authorizer } from "./auth.js";
import type { Metrics } from "../metrics/metrics.js";
import type { StreamGrants } from "./stream-grants.js";
import type { WebhookResolver } from "../subscriptions/delivery.js";

export interface HttpContext {
  store: Store;
  auth: Authorizer;
  /** Stream tokens (absent when the store has no general streams). */
  grants: StreamGrants | undefined;
  waiters: StreamWaiters;
  /** Following streams live: the one loop under long-poll, SSE, WebSocket and smee. */
  live: LiveStreams;
  config: ServerConfig;
  logger: Logger;
  /** The base URL for links in replies (the public URL, or where we listen). */
  baseUrl: () => string;
  isShuttingDown: () => boolean;
  metrics: Metrics;
  /** Resolves subscription webhook hosts (tests inject one; the system resolver otherwise). */
  resolveWebhookHost?: WebhookResolver;
  /** Keys a snapshot page looks at, at most (PAGE_LIMITS otherwise; tests make it small). */
  snapshotPageKeys?: number;
}
