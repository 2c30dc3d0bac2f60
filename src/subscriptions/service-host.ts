/*
 * The stable layer between the routes and the subscription service. The service keeps
 * its state in memory, so only one process per database may run it: on PostgreSQL the
 * leader (follow-leadership.ts), on SQLite the one process there is.
 *
 * Leadership comes and goes, so each term gets a fresh service, loaded from the
 * records: a closed service is never restarted, because another process may have led
 * and changed the records meanwhile. Terms never overlap: a new one starts only after
 * the previous one has closed (timers stopped, deliveries aborted, writes settled).
 */
import type { StreamDirectory } from "./ports.js";
import { SubscriptionService, type SubscriptionServiceOptions } from "./service.js";
import { readSigningKeys } from "./signing-keys.js";
import { jwkSet } from "./signing.js";

type AppendListener = Parameters<StreamDirectory["onAppend"]>[0];

export class SubscriptionHost {
  private current: SubscriptionService | undefined;
  private transitions: Promise<void> = Promise.resolve();
  private closed = false;
  /** The current term's listener: the directory takes listeners but never drops them, so we forward. */
  private appendListener: AppendListener | undefined;
  private readonly termDirectory: StreamDirectory;

  constructor(private readonly options: SubscriptionServiceOptions) {
    const base = options.directory;
    base.onAppend((changes) => this.appendListener?.(changes));
    this.termDirectory = {
      list: () => base.list(),
      tailOffset: (path) => base.tailOffset(path),
      appendJson: (path, value) => base.appendJson(path, value),
      onAppend: (listener) => {
        this.appendListener = listener;
      },
    };
  }

  /** The current term's service; undefined while another process leads (or between terms). */
  serving(): SubscriptionService | undefined {
    return this.current;
  }

  /** Starts a term unless one runs: loads the records and resumes what is owed. Rejects if that failed. */
  lead(): Promise<void> {
    return this.transition(async () => {
      if (this.current || this.closed) return;
      const service = new SubscriptionService({ ...this.options, directory: this.termDirectory });
      // Served at once: requests arriving while it loads wait inside it for start().
      this.current = service;
      try {
        await service.start();
      } catch (error) {
        await this.endTerm();
        throw error;
      }
    });
  }

  /** Ends the current term (another process leads now, or we stop). */
  follow(): Promise<void> {
    return this.transition(() => this.endTerm());
  }

  /** Ends the current term for good: later lead() calls do nothing. */
  close(): Promise<void> {
    this.closed = true;
    return this.follow();
  }

  /**
   * The public signing keys. Without a term they are read from the records, so that any
   * process can publish them (receivers may reach any process); undefined when the
   * leader has not created a key yet.
   */
  async jwks(): Promise<{ keys: unknown[] } | undefined> {
    const service = this.current;
    if (service) return service.jwks();
    // The leader logs unreadable keys; publishing the readable ones is enough here.
    const keys = await readSigningKeys(this.options.records, () => undefined);
    return keys.length > 0 ? jwkSet(keys) : undefined;
  }

  private async endTerm(): Promise<void> {
    const service = this.current;
    this.current = undefined;
    this.appendListener = undefined;
    await service?.close();
  }

  /** Terms start and end one after the other, in the order asked. */
  private transition(step: () => Promise<void>): Promise<void> {
    const run = this.transitions.then(step);
    this.transitions = run.catch(() => undefined);
    return run;
  }
}
