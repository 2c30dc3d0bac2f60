/*
 * One store read per position, however many followers are there, and none at the
 * tail. A follower at the tail is handed what the commit wrote (RecentTails), one page
 * object for all followers at its position. Otherwise followers woken by the same
 * commit ask for the same page at once; the first asks the store, the rest get its
 * promise. A read that started before the commit is stale for them: they then find
 * the remembered tail past their position and read again (StreamWaiters).
 */
import type { StoredMessage, StreamInfo } from "../core/types.js";
import type { ReadLimits, Store } from "../storage/store.js";
import { PAGE_LIMITS, readPage, type Gone } from "./pages.js";
import type { ReadView } from "../core/compaction.js";
import type { RecentTails } from "./recent-tails.js";

/** What a follower finds at its position: a page (with the stream as it is now), gone, or no stream. */
export type FollowRead =
  | { kind: "page"; stream: StreamInfo; messages: StoredMessage[]; lastSeq: number; upToDate: boolean }
  | Gone
  | { kind: "deleted"; soft: boolean };

async function readFollowPage(store: Store, streamId: number, afterSeq: number, limits: ReadLimits, view: ReadView): Promise<FollowRead> {
  const stream = await store.getStreamById(streamId);
  if (!stream || stream.softDeleted) return { kind: "deleted", soft: stream !== undefined };
  const page = await readPage(store, stream, afterSeq, limits, view);
  return page.kind === "gone" ? page : { ...page, stream };
}

export class SharedReads {
  private readonly inFlight = new Map<string, Promise<FollowRead>>();

  constructor(
    private readonly store: Store,
    private readonly recent: RecentTails,
  ) {}

  /** The stream and its page after afterSeq (in the compacted log at `view`, if any); joins the same read if one is under way. */
  read(streamId: number, afterSeq: number, limits: ReadLimits = PAGE_LIMITS, view: ReadView = undefined): Promise<FollowRead> {
    const handed = this.recent.page(streamId, afterSeq, limits, view);
    if (handed) return Promise.resolve(handed);
    const key = `${streamId}:${afterSeq}:${limits.maxMessages}:${limits.maxBytes}:${view ?? ""}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    // Taken before the read: a commit told while it runs makes what it found too old to start from.
    const ticket = this.recent.ticket(streamId);
    const reading = readFollowPage(this.store, streamId, afterSeq, limits, view)
      .then((found) => {
        if (found.kind === "page" && ticket !== undefined) this.recent.seed(streamId, ticket, found.stream);
        return found;
      })
      .finally(() => {
        if (this.inFlight.get(key) === reading) this.inFlight.delete(key);
      });
    this.inFlight.set(key, reading);
    return reading;
  }
}
