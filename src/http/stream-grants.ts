/*
 * Stream tokens: the admin hands out a token that may read (or read and write) the
 * general streams under one path prefix, e.g. for a browser following "chat/room-1".
 * Tokens are kept as sha256 hashes in the store's durable records, so every process
 * on a shared database knows them; each process keeps them in memory by hash and
 * reads the records again at most once a second.
 */
import { randomBytes } from "node:crypto";
import { hashToken, newToken } from "../core/ids.js";
import type { GeneralStreams } from "../storage/streams.js";

export type StreamAccess = "read" | "write";

export interface StreamGrant {
  id: string;
  /** Streams named exactly this, or below it ("<prefix>/…"). */
  prefix: string;
  access: StreamAccess;
  createdAt: number;
  expiresAt: number | null;
  /** sha256 of the token, hex. */
  tokenHash: string;
}

const KIND = "stream-token";
const RELOAD_AFTER_MS = 1000;

export function grantCovers(grant: StreamGrant, name: string, access: StreamAccess, now: number): boolean {
  if (grant.expiresAt !== null && now >= grant.expiresAt) return false;
  if (access === "write" && grant.access !== "write") return false;
  return name === grant.prefix || name.startsWith(`${grant.prefix}/`);
}

export interface NewGrant {
  prefix: string;
  access: StreamAccess;
  expiresInSeconds: number | null;
}

/** A `POST /api/stream-tokens` body (its shape checked by the route's schema) with the defaults filled in. */
export function newGrantOf(body: { prefix: string; access?: StreamAccess; expiresInSeconds?: number | null }): NewGrant {
  return { prefix: body.prefix.replace(/\/+$/, ""), access: body.access ?? "read", expiresInSeconds: body.expiresInSeconds ?? null };
}

export class StreamGrants {
  private byHash = new Map<string, StreamGrant>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

  constructor(private readonly records: Pick<GeneralStreams, "listRecords" | "putRecord">) {}

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const grants = (await this.records.listRecords(KIND)).map((record) => JSON.parse(record.value) as StreamGrant);
        this.byHash = new Map(grants.map((grant) => [grant.tokenHash, grant]));
        this.loadedAt = Date.now();
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /**
   * The grant of a presented token, if it is one. The records are read again when the
   * copy in memory is over a second old, so a token made or revoked by another process
   * counts here within a second too.
   */
  async find(token: string): Promise<StreamGrant | undefined> {
    if (Date.now() - this.loadedAt >= RELOAD_AFTER_MS) await this.reload();
    return this.byHash.get(hashToken(token).toString("hex"));
  }

  async create(grant: NewGrant): Promise<{ token: string; grant: StreamGrant }> {
    const token = newToken("ths");
    const now = Date.now();
    const created: StreamGrant = {
      id: `stk_${randomBytes(12).toString("base64url")}`,
      prefix: grant.prefix,
      access: grant.access,
      createdAt: now,
      expiresAt: grant.expiresInSeconds === null ? null : now + grant.expiresInSeconds * 1000,
      tokenHash: hashToken(token).toString("hex"),
    };
    await this.records.putRecord(KIND, created.id, JSON.stringify(created));
    this.byHash.set(created.tokenHash, created);
    return { token, grant: created };
  }

  async list(): Promise<StreamGrant[]> {
    await this.reload();
    return [...this.byHash.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Revokes a grant everywhere: other processes stop honouring it at their next reload. */
  async revoke(id: string): Promise<boolean> {
    await this.reload();
    const grant = [...this.byHash.values()].find((candidate) => candidate.id === id);
    if (!grant) return false;
    await this.records.putRecord(KIND, id, null);
    this.byHash.delete(grant.tokenHash);
    return true;
  }
}
