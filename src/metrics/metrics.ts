/*
 * The metrics one tailhook process exposes at /metrics (docs/metrics.md). Each process
 * owns its own prom-client Registry, so tests start servers side by side and read
 * fresh counters; the rest of the code records through the few verb-first methods
 * here and never sees prom-client. Labels take values from closed sets only (route
 * patterns, status codes, transports, schemes); per-inbox labels exist only when the
 * operator switched them on, and even then at most `perInboxLimit` inboxes get their
 * own series, the rest share inbox="_other".
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const READER_TRANSPORTS = ["long-poll", "sse", "websocket", "smee"] as const;
export type ReaderTransport = (typeof READER_TRANSPORTS)[number];

/** The label of an inbox past the per-inbox limit (or of all inboxes when per-inbox labels are off). */
export const OTHER_INBOXES = "_other";
/** Requests no route matched: one label value, never the URL. */
const UNMATCHED_ROUTE = "unmatched";

export interface MetricsOptions {
  /** Label ingest and consumer-lag series by inbox id (TAILHOOK_METRICS_PER_INBOX). */
  perInbox: boolean;
  /** At most this many inboxes get series of their own. */
  perInboxLimit: number;
  /** Process metrics (CPU, memory, event loop, GC); off only where a test wants a short page. */
  processMetrics?: boolean;
}

/** Something with a close event: a ServerResponse, a socket, a WebSocket. */
export interface Closable {
  once(event: "close", listener: () => void): unknown;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly labelledInboxes = new Set<string>();
  private readonly refreshers: Array<() => Promise<void>> = [];

  private readonly requests = new Counter({
    name: "tailhook_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status (status 0: the client left before an answer).",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  private readonly ingestBytes = new Counter({
    name: "tailhook_ingest_bytes_total",
    help: "Body bytes of events committed to inboxes (webhooks, mail, sources); duplicates are not counted.",
    labelNames: ["inbox"] as const,
    registers: [this.registry],
  });
  private readonly ingestEvents = new Counter({
    name: "tailhook_ingest_events_total",
    help: "Events committed to inboxes.",
    labelNames: ["inbox"] as const,
    registers: [this.registry],
  });
  private readonly commitSeconds = new Histogram({
    name: "tailhook_commit_duration_seconds",
    help: "Time from handing an event to the store until it is committed and on disk (group-commit wait included).",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly batchSize = new Histogram({
    name: "tailhook_group_commit_batch_size",
    help: "Operations committed together in one group-commit transaction.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    registers: [this.registry],
  });
  private readonly storeErrors = new Counter({
    name: "tailhook_store_errors_total",
    help: "Store calls that failed (the caller answered 503 or retried), by store operation.",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  private readonly readers = new Gauge({
    name: "tailhook_open_readers",
    help: "Live readers connected now, by transport.",
    labelNames: ["transport"] as const,
    registers: [this.registry],
  });
  private readonly retentionRemovals = new Counter({
    name: "tailhook_retention_removed_total",
    help: "Rows removed by retention passes (events past an inbox's limits, events of deleted inboxes and streams, expired dedupe entries).",
    registers: [this.registry],
  });
  private readonly compactionRemovals = new Counter({
    name: "tailhook_compaction_removed_total",
    help: "Events removed by compaction behind a key frame.",
    registers: [this.registry],
  });
  private readonly verificationFailures = new Counter({
    name: "tailhook_verification_failures_total",
    help: "Requests whose signature did not verify, by scheme and mode (enforce: refused with 401; annotate: stored with the verdict).",
    labelNames: ["scheme", "mode"] as const,
    registers: [this.registry],
  });
  private readonly duplicates = new Counter({
    name: "tailhook_dedupe_duplicates_total",
    help: "Deliveries recognised as repeats of an event already stored (answered as the first one, not stored again).",
    labelNames: ["inbox"] as const,
    registers: [this.registry],
  });
  private readonly smtpMessages = new Counter({
    name: "tailhook_smtp_messages_total",
    help: "SMTP messages answered after DATA, by reply code (250 stored; 4xx try again; 5xx refused).",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });

  constructor(private readonly options: MetricsOptions) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges whose names end in _total break the exposition format's naming rules (promtool
      // says so); each only sums the per-type gauge of the same name without the suffix.
      for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    }
    for (const transport of READER_TRANSPORTS) this.readers.set({ transport }, 0);
    // Present from the start at zero, so rate() and alerts see the series before the first event.
    this.retentionRemovals.inc(0);
    this.compactionRemovals.inc(0);
  }

  /** The inbox label value: the id while under the limit, else "_other". */
  inboxLabel(inboxId: string): string {
    if (!this.options.perInbox) return OTHER_INBOXES;
    if (this.labelledInboxes.has(inboxId)) return inboxId;
    if (this.labelledInboxes.size >= this.options.perInboxLimit) return OTHER_INBOXES;
    this.labelledInboxes.add(inboxId);
    return inboxId;
  }

  get perInbox(): boolean {
    return this.options.perInbox;
  }

  get perInboxLimit(): number {
    return this.options.perInboxLimit;
  }

  countRequest(method: string, route: string | null, status: number): void {
    this.requests.inc({ method: normalMethod(method), route: route ?? UNMATCHED_ROUTE, status: String(status) });
  }

  countIngested(inboxId: string, bytes: number): void {
    const inbox = this.inboxLabel(inboxId);
    this.ingestEvents.inc({ inbox });
    this.ingestBytes.inc({ inbox }, bytes);
  }

  countDuplicate(inboxId: string): void {
    this.duplicates.inc({ inbox: this.inboxLabel(inboxId) });
  }

  observeCommit(seconds: number): void {
    this.commitSeconds.observe(seconds);
  }

  observeBatch(operations: number): void {
    this.batchSize.observe(operations);
  }

  countStoreError(operation: string): void {
    this.storeErrors.inc({ operation });
  }

  countRetentionRemovals(rows: number): void {
    if (rows > 0) this.retentionRemovals.inc(rows);
  }

  countCompactionRemovals(events: number): void {
    if (events > 0) this.compactionRemovals.inc(events);
  }

  countVerificationFailure(scheme: string, mode: string): void {
    this.verificationFailures.inc({ scheme, mode });
  }

  countSmtpMessage(code: number): void {
    this.smtpMessages.inc({ code: String(code) });
  }

  /** One more open reader on `transport` until `connection` closes. */
  trackReader(transport: ReaderTransport, connection: Closable): void {
    this.readers.inc({ transport });
    connection.once("close", () => this.readers.dec({ transport }));
  }

  /** Runs before each scrape renders (gauges read from the store and the file system). */
  beforeScrape(refresh: () => Promise<void>): void {
    this.refreshers.push(refresh);
  }

  /** The exposition text. A refresher that fails leaves its gauges at their last values; the store's own failure is counted. */
  async render(): Promise<string> {
    await Promise.allSettled(this.refreshers.map((refresh) => refresh()));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const MISNAMED_DEFAULT_GAUGES = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Any method is accepted at /h/…; the label keeps the common ones and folds the rest. */
function normalMethod(method: string): string {
  return METHODS.has(method) ? method : "OTHER";
}
