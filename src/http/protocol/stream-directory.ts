/*
 * The general streams as the subscription service sees them (subscriptions/ports.ts):
 * paths, tail offsets, appends of wake events, and a feed of commits. A path whose
 * stream id changed (or that was never seen) was created by that commit, which lets a
 * subscription link a re-created stream from its start. Each stream id is looked up
 * once; after that a commit costs no query.
 */
import { LRUCache } from "lru-cache";
import { formatOffset } from "../../core/offsets.js";
import type { Store } from "../../storage/store.js";
import { isExpired } from "../../core/streams.js";
import { type GeneralStreams } from "../../storage/streams.js";
import { WAKE_ALL } from "../../core/stream-rules.js";
import type { StreamDirectory, StreamTail } from "../../subscriptions/ports.js";
import { isInboxStreamName } from "./stream-access.js";

const NAME_CACHE_SIZE = 100_000;
/** Stands for an inbox's stream in the name cache: no general stream has an empty name. */
const INBOX = "";

export function streamDirectory(store: Store, general: GeneralStreams): StreamDirectory {
  const knownIds = new Map<string, number>();
  const loaded = general.listGeneralStreams().then(
    (streams) => {
      for (const stream of streams) knownIds.set(stream.name, stream.id);
    },
    () => undefined,
  );

  return {
    async list() {
      return (await general.listGeneralStreams()).map((stream) => ({ path: stream.name, tailOffset: formatOffset(stream.tailSeq) }));
    },
    async tailOffset(path) {
      if (isInboxStreamName(path)) return undefined;
      const stream = await store.getStream(path);
      if (!stream || stream.softDeleted || isExpired(stream, Date.now())) return undefined;
      return formatOffset(stream.tailSeq);
    },
    async appendJson(path, value) {
      if (isInboxStreamName(path)) return "not_found";
      const result = await general.appendStream({
        name: path,
        contentType: "application/json",
        messages: [Buffer.from(JSON.stringify(value))],
        close: false,
        streamSeq: null,
        producer: null,
      });
      if (result.status === "appended") return "appended";
      return result.status === "not_found" || result.status === "gone" ? "not_found" : "rejected";
    },
    onAppend(listener) {
      /**
       * Stream names by id (INBOX: an inbox's stream, which subscriptions ignore); names
       * never change, so commits need no query. Bounded: a forgotten id costs one lookup.
       */
      const nameById = new LRUCache<number, string>({ max: NAME_CACHE_SIZE });
      store.onCommit((tails) => {
        const changes: Array<StreamTail & { created: boolean }> = [];
        const unknown: number[] = [];
        for (const [streamId, tail] of tails) {
          const name = nameById.get(streamId);
          if (name === INBOX) continue;
          if (name === undefined || tail === WAKE_ALL) unknown.push(streamId);
          else changes.push({ path: name, tailOffset: formatOffset(tail), created: false });
        }
        if (changes.length > 0) listener(changes);
        if (unknown.length === 0) return;
        // A lookup that fails (the database just went away) loses this notice only: the
        // subscription catches up at the stream's next commit, or at its next start.
        (async () => {
          await loaded;
          const found: Array<StreamTail & { created: boolean }> = [];
          for (const streamId of unknown) {
            const stream = await store.getStreamById(streamId);
            if (!stream) {
              // Removed: forget its name, so the maps hold live streams only.
              const name = nameById.get(streamId);
              if (name && knownIds.get(name) === streamId) knownIds.delete(name);
              nameById.delete(streamId);
              continue;
            }
            if (isInboxStreamName(stream.name)) {
              nameById.set(streamId, INBOX);
              continue;
            }
            nameById.set(streamId, stream.name);
            if (stream.softDeleted) continue;
            const created = knownIds.get(stream.name) !== stream.id;
            knownIds.set(stream.name, stream.id);
            found.push({ path: stream.name, tailOffset: formatOffset(stream.tailSeq), created });
          }
          if (found.length > 0) listener(found);
        })().catch(() => undefined);
      });
    },
  };
}
