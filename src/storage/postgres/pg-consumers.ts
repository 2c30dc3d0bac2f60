/*
 * Consumers of the PostgreSQL store: named read positions per stream, committed with
 * GREATEST so an older ack never moves one back.
 */
import type postgres from "postgres";
import type { Consumer } from "../../core/types.js";
import type { TrackQuery } from "./pg-reads.js";

export class PgConsumers {
  constructor(
    private readonly sql: postgres.Sql,
    private readonly track: TrackQuery,
  ) {}

  private consumerColumns() {
    return this
      .sql`stream_id AS "streamId", name, committed_seq AS "committedSeq", created_at AS "createdAt", last_ack_at AS "lastAckAt", last_seen_at AS "lastSeenAt"`;
  }

  async getConsumer(streamId: number, name: string): Promise<Consumer | undefined> {
    const [row] = await this.track(
      () => this.sql<Consumer[]>`SELECT ${this.consumerColumns()} FROM consumers WHERE stream_id = ${streamId} AND name = ${name}`,
    );
    return row;
  }

  async listConsumers(streamId: number): Promise<Consumer[]> {
    return this.track(
      () => this.sql<Consumer[]>`SELECT ${this.consumerColumns()} FROM consumers WHERE stream_id = ${streamId} ORDER BY name`,
    );
  }

  async ensureConsumer(streamId: number, name: string, startSeq: number): Promise<Consumer> {
    await this.track(
      () => this.sql`
        INSERT INTO consumers (stream_id, name, committed_seq, created_at) VALUES (${streamId}, ${name}, ${startSeq}, ${Date.now()})
        ON CONFLICT DO NOTHING`,
    );
    return (await this.getConsumer(streamId, name))!;
  }

  async ackConsumer(streamId: number, name: string, seq: number): Promise<Consumer> {
    const now = Date.now();
    const [row] = await this.track(
      () => this.sql<Consumer[]>`
        INSERT INTO consumers (stream_id, name, committed_seq, created_at, last_ack_at) VALUES (${streamId}, ${name}, ${seq}, ${now}, ${now})
        ON CONFLICT (stream_id, name) DO UPDATE
          SET committed_seq = GREATEST(consumers.committed_seq, EXCLUDED.committed_seq), last_ack_at = EXCLUDED.last_ack_at
        RETURNING ${this.consumerColumns()}`,
    );
    return row!;
  }

  async deleteConsumer(streamId: number, name: string): Promise<boolean> {
    const rows = await this.track(() => this.sql`DELETE FROM consumers WHERE stream_id = ${streamId} AND name = ${name} RETURNING name`);
    return rows.length > 0;
  }

  async markConsumerSeen(streamId: number, name: string): Promise<void> {
    await this.track(() => this.sql`UPDATE consumers SET last_seen_at = ${Date.now()} WHERE stream_id = ${streamId} AND name = ${name}`);
  }
}
