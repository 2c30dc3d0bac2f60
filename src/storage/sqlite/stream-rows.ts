/* How a streams row is selected and turned into a StreamInfo, for both SQLite connections. */
import { policyOf } from "../../core/compaction.js";
import type { StreamInfo } from "../../core/types.js";

export const STREAM_COLUMNS =
  "id, name, content_type AS contentType, tail_seq AS tailSeq, first_seq AS firstSeq, closed, created_at AS createdAt, " +
  "soft_deleted AS softDeleted, ttl_seconds AS ttlSeconds, expires_at AS expiresAt, touched_at AS touchedAt, " +
  "forked_from AS forkedFrom, fork_seq AS forkSeq, state_protocol AS stateProtocol, key_frame AS keyFrame, key_frame_version AS keyFrameVersion, " +
  "horizon_seq AS horizonSeq, compaction";

export interface StreamRow extends Omit<StreamInfo, "closed" | "softDeleted" | "compaction"> {
  closed: number;
  softDeleted: number;
  compaction: string | null;
}

export function toStream(row: StreamRow): StreamInfo {
  return { ...row, closed: row.closed !== 0, softDeleted: row.softDeleted !== 0, compaction: policyOf(row.compaction) };
}
