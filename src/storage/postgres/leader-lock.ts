/*
 * Leadership among the processes sharing one PostgreSQL schema: a session-level
 * advisory lock, held on a connection of its own. The lock lives exactly as long as
 * that database session, so a process that dies or loses its connection gives it up,
 * and another process takes it at its next try (every second).
 *
 * The `postgres` client reconnects silently, and a new session does not hold the old
 * session's lock. So while leading we do not trust a connection that merely answers:
 * we ask pg_locks whether *this* session (pg_backend_pid()) still holds the lock.
 */
import postgres from "postgres";
import type { Leadership } from "../store.js";

export interface LeaderLockOptions {
  url: string;
  /** The store's schema: its name is part of the key, so schemas sharing a database do not collide. */
  schema?: string;
  /** What is led (several kinds of leadership can share a schema). */
  name: string;
  /** How often to try to take the lock, or to check it is still ours (default 1 s). */
  intervalMs?: number;
  /** A try or check that takes longer counts as failed (default 5 s). */
  checkTimeoutMs?: number;
  /** Told about failed tries and checks (the database may be down). */
  onError?: (error: unknown) => void;
}

/** First half of the two-int key; the second half hashes schema and name. */
const LOCK_CLASS = 7442293;
const DEFAULT_INTERVAL_MS = 1_000;
const DEFAULT_CHECK_TIMEOUT_MS = 5_000;

export class LeaderLock implements Leadership {
  private sql: postgres.Sql | undefined;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** The try or check under way, so stop() can wait for it. */
  private running: Promise<void> = Promise.resolve();
  private onChange: (leading: boolean) => void = () => undefined;

  constructor(private readonly options: LeaderLockOptions) {}

  async start(onChange: (leading: boolean) => void): Promise<void> {
    this.onChange = onChange;
    this.running = this.tick();
    await this.running;
  }

  /** Ends the session, which releases the lock at once (the server drops a session's advisory locks with it). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.leading = false;
    const sql = this.sql;
    this.sql = undefined;
    await sql?.end({ timeout: 1 });
  }

  private async tick(): Promise<void> {
    try {
      const leading = await this.withTimeout(this.leading ? this.stillHeld() : this.tryTake());
      this.report(leading);
    } catch (error) {
      this.options.onError?.(error);
      // A connection that failed or hangs is not trusted again; ending it also makes the
      // server let go of a lock it might still hold for us, before anyone else leads.
      this.discardConnection();
      this.report(false);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick();
    }, this.options.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
  }

  private report(leading: boolean): void {
    if (this.stopped || leading === this.leading) return;
    this.leading = leading;
    this.onChange(leading);
  }

  private async tryTake(): Promise<boolean> {
    const sql = this.connection();
    const [row] = await sql<Array<{ locked: boolean | null }>>`
      SELECT pg_try_advisory_lock(${LOCK_CLASS}, hashtext(current_schema() || '/' || ${this.options.name}::text)) AS locked`;
    return row?.locked === true;
  }

  /** pg_locks shows a two-int advisory key as classid, objid (an oid: the int's unsigned bits), objsubid 2. */
  private async stillHeld(): Promise<boolean> {
    const sql = this.connection();
    const [row] = await sql<Array<{ held: boolean }>>`
      SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
          AND classid = ${LOCK_CLASS}::oid AND objsubid = 2
          AND objid = (hashtext(current_schema() || '/' || ${this.options.name}::text)::bigint & 4294967295)::oid
      ) AS held`;
    return row?.held === true;
  }

  private connection(): postgres.Sql {
    this.sql ??= postgres(this.options.url, {
      max: 1,
      // Never close the connection on our own: that would silently drop the lock.
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: 2,
      onnotice: () => undefined,
      ...(this.options.schema ? { connection: { search_path: this.options.schema } } : {}),
    });
    return this.sql;
  }

  private discardConnection(): void {
    const sql = this.sql;
    this.sql = undefined;
    void sql?.end({ timeout: 0 }).catch(() => undefined);
  }

  private withTimeout<T>(query: Promise<T>): Promise<T> {
    const timeoutMs = this.options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`leadership check got no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([query, timeout]).finally(() => clearTimeout(timer));
  }
}
