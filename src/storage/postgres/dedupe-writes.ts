/*
 * The dedupe rows one grouped append writes on PostgreSQL: new delivery ids are plain
 * INSERTs (the primary key makes a second process's insert of the same id fail, and
 * its whole batch with it, rather than append twice), entries past their window are
 * replaced, and repeats add to the first delivery's count.
 */
import type postgres from "postgres";

export interface DeliveryRow {
  stream_id: number;
  key: string;
  seq: number;
  event_id: string;
  first_at: number;
  expires_at: number;
  deliveries: number;
}

/** A delivery id the running batch knows of: stored before, or appended by this batch (`entry`). */
export interface SeenDelivery {
  key: string;
  seq: number;
  id: string;
  firstAt: number;
  entry?: DeliveryRow;
}

export class DeliveryWrites {
  private readonly inserts: DeliveryRow[] = [];
  private readonly expired: Array<{ streamId: number; key: string }> = [];
  private readonly repeats = new Map<number, Map<string, number>>();

  add(row: DeliveryRow): void {
    this.inserts.push(row);
  }

  replaceExpired(streamId: number, key: string): void {
    this.expired.push({ streamId, key });
  }

  repeat(streamId: number, key: string, seen: SeenDelivery): void {
    if (seen.entry) {
      seen.entry.deliveries += 1;
      return;
    }
    const keys = this.repeats.get(streamId) ?? new Map<string, number>();
    keys.set(key, (keys.get(key) ?? 0) + 1);
    this.repeats.set(streamId, keys);
  }

  async write(tx: postgres.TransactionSql): Promise<void> {
    for (const { streamId, key } of this.expired) await tx`DELETE FROM dedupe WHERE stream_id = ${streamId} AND key = ${key}`;
    if (this.inserts.length > 0) {
      await tx`INSERT INTO dedupe ${tx(this.inserts, "stream_id", "key", "seq", "event_id", "first_at", "expires_at", "deliveries")}`;
    }
    for (const [streamId, keys] of this.repeats) {
      for (const [key, count] of keys) {
        await tx`UPDATE dedupe SET deliveries = deliveries + ${count} WHERE stream_id = ${streamId} AND key = ${key}`;
      }
    }
  }
}
