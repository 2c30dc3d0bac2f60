/*
 * What is known of each followed stream from the commits told since it was followed:
 * its last tail (so a follower at the tail can wait without asking the store), and
 * (CommitDetail) the stream as it is now and its last messages, so a follower at
 * the tail is handed its next page without a store read, and all followers at one
 * position share one page object.
 *
 * It only ever answers with what a store read would give at that moment, else
 * nothing (the caller reads the store). What it knows starts from a real read (seed)
 * and grows only by plain appends (webhook events, Durable Streams appends) that arrive
 * gapless after it; any other notice about the stream (a tail without its messages:
 * another process, PostgreSQL, a close or delete; or a commit with other changes:
 * retention, compaction, settings, touches) makes it forget the stream until the next
 * real read.
 */
import { behindHorizon, type ReadView } from "../core/compaction.js";
import { WAKE_ALL } from "../core/stream-rules.js";
import type { StoredMessage, StreamInfo } from "../core/types.js";
import type { AppendedMessages, CommitDetail, ReadLimits } from "../storage/store.js";

/** How much of a followed stream's tail is kept, at most: about one default page. */
const RECENT_MAX_MESSAGES = 1000;
const RECENT_MAX_BYTES = 1024 * 1024;

export interface HandedPage {
  kind: "page";
  stream: StreamInfo;
  messages: StoredMessage[];
  lastSeq: number;
  upToDate: boolean;
}

interface Recent {
  followers: number;
  /** The highest tail told since the first follower started; unknown before any commit. */
  tail: number | undefined;
  /** Bumped by every notice about the stream: a read that started before one must not seed. */
  version: number;
  /** The stream as it is after `messages`; undefined until a read seeds it and after anything but a plain append. */
  stream: StreamInfo | undefined;
  /** The last messages up to stream.tailSeq, gapless, oldest first. */
  messages: StoredMessage[];
  bytes: number;
  /** Pages handed since the last notice, by position and limits: readers there share one. */
  pages: Map<string, HandedPage>;
}

export class RecentTails {
  private readonly streams = new Map<number, Recent>();

  /** Remembers the stream while it is followed; the returned release ends that. */
  track(streamId: number): () => void {
    let entry = this.streams.get(streamId);
    if (!entry) {
      entry = { followers: 0, tail: undefined, version: 0, stream: undefined, messages: [], bytes: 0, pages: new Map() };
      this.streams.set(streamId, entry);
    }
    const recent = entry;
    recent.followers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      recent.followers--;
      if (recent.followers === 0 && this.streams.get(streamId) === recent) this.streams.delete(streamId);
    };
  }

  /** The last tail told for a followed stream, if any commit was told since it was followed. */
  knownTail(streamId: number): number | undefined {
    return this.streams.get(streamId)?.tail;
  }

  /** The streams somebody follows. */
  followed(): IterableIterator<number> {
    return this.streams.keys();
  }

  /** Taken before a store read; hand it back to seed(). Undefined when the stream is not followed. */
  ticket(streamId: number): number | undefined {
    return this.streams.get(streamId)?.version;
  }

  /** The stream as a read found it, which started at `ticket`: the start of what is known, if nothing was told since. */
  seed(streamId: number, ticket: number, stream: StreamInfo): void {
    const recent = this.streams.get(streamId);
    if (!recent || recent.version !== ticket || recent.stream) return;
    recent.stream = stream;
  }

  /**
   * The page after afterSeq from memory, or undefined when a store read must answer:
   * nothing known, nothing new (the caller's own check at the tail costs no read),
   * the position behind what is kept, retention or the horizon, or a compacted-log view.
   */
  page(streamId: number, afterSeq: number, limits: ReadLimits, view: ReadView): HandedPage | undefined {
    if (view !== undefined) return undefined;
    const recent = this.streams.get(streamId);
    const stream = recent?.stream;
    if (!recent || !stream || afterSeq >= stream.tailSeq) return undefined;
    const first = recent.messages[0];
    if (!first || first.seq > afterSeq + 1) return undefined;
    if (stream.firstSeq - 1 > afterSeq || behindHorizon(stream, afterSeq, view)) return undefined;
    const key = `${afterSeq}:${limits.maxMessages}:${limits.maxBytes}`;
    const shared = recent.pages.get(key);
    if (shared) return shared;
    const page = pageOf(stream, recent.messages.slice(afterSeq + 1 - first.seq), limits);
    recent.pages.set(key, page);
    return page;
  }

  /** A commit's notice (or a tail re-check): a plain append extends what is known, anything else forgets it. */
  notify(tails: ReadonlyMap<number, number>, detail?: CommitDetail): void {
    if (detail?.otherChanges) for (const recent of this.streams.values()) forget(recent);
    for (const [streamId, tailSeq] of tails) {
      const recent = this.streams.get(streamId);
      if (!recent) continue;
      // Tails only grow; a late or repeated report must not move the remembered one back.
      if (recent.tail === undefined || tailSeq > recent.tail) recent.tail = tailSeq;
      recent.version++;
      recent.pages.clear();
      const known = recent.stream;
      if (!known || tailSeq <= known.tailSeq) continue;
      const appended = tailSeq === WAKE_ALL ? undefined : detail?.appendedTo(streamId);
      if (!appended || !extend(recent, known, appended, tailSeq)) forget(recent);
    }
  }
}

/** The messages from the caller's position on, within the limits as a store read applies them (at least one). */
function pageOf(stream: StreamInfo, after: StoredMessage[], limits: ReadLimits): HandedPage {
  const messages: StoredMessage[] = [];
  let bytes = 0;
  for (const message of after) {
    if (messages.length >= limits.maxMessages) break;
    messages.push(message);
    bytes += message.data.length;
    if (bytes >= limits.maxBytes) break;
  }
  const lastSeq = messages.at(-1)!.seq;
  return { kind: "page", stream, messages, lastSeq, upToDate: lastSeq >= stream.tailSeq };
}

function forget(recent: Recent): void {
  recent.version++;
  recent.stream = undefined;
  recent.messages = [];
  recent.bytes = 0;
  recent.pages.clear();
}

/**
 * Adds a commit's messages after the known tail; false unless they run gapless up to
 * the new tail. Messages at or before the known tail are skipped: a read that seeded
 * may already have seen the commit whose notice comes after it.
 */
function extend(recent: Recent, known: StreamInfo, appended: AppendedMessages, tailSeq: number): boolean {
  let expected = known.tailSeq + 1;
  const added: StoredMessage[] = [];
  for (const message of appended.messages) {
    if (message.seq < expected) continue;
    if (message.seq !== expected) return false;
    added.push(message);
    expected++;
  }
  if (expected - 1 !== tailSeq) return false;
  recent.messages.push(...added);
  for (const message of added) recent.bytes += message.data.length;
  let drop = Math.max(0, recent.messages.length - RECENT_MAX_MESSAGES);
  let bytes = recent.bytes;
  for (let i = 0; i < drop; i++) bytes -= recent.messages[i]!.data.length;
  while (drop < recent.messages.length && bytes > RECENT_MAX_BYTES) bytes -= recent.messages[drop++]!.data.length;
  if (drop > 0) recent.messages.splice(0, drop);
  recent.bytes = bytes;
  const touchedAt = appended.touchedAt === undefined ? known.touchedAt : Math.max(known.touchedAt ?? 0, appended.touchedAt);
  recent.stream = { ...known, tailSeq, touchedAt };
  return true;
}
