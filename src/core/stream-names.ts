/*
 * How streams are named. An inbox's events are the stream "inbox/<inbox id>"; general
 * streams may take any other name. Both stores and the HTTP layer spell it through here.
 */
export const INBOX_STREAM_PREFIX = "inbox/";

export function inboxStreamName(inboxId: string): string {
  return `${INBOX_STREAM_PREFIX}${inboxId}`;
}

export function isInboxStreamName(name: string): boolean {
  return name.startsWith(INBOX_STREAM_PREFIX);
}

/** The inbox id a stream name stands for, if it names an inbox's stream. */
export function inboxIdOf(name: string): string | undefined {
  return isInboxStreamName(name) ? name.slice(INBOX_STREAM_PREFIX.length) : undefined;
}

/** A SQL LIKE pattern matching every inbox stream (the prefix holds no LIKE wildcards). */
export const INBOX_STREAM_PATTERN = `${INBOX_STREAM_PREFIX}%`;
