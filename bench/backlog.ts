/*
 * Fills an inbox with a backlog before the catch-up and forward phases: exactly
 * `count` POSTs of the same body over concurrent keep-alive connections (autocannon's
 * `amount`), then the inbox's lastSeq is read back, so the later phases know exactly
 * which seqs to expect.
 */
import autocannon from "autocannon";
import { performance } from "node:perf_hooks";
import type { Inbox } from "./children.js";

export interface Backlog {
  inbox: Inbox;
  requested: number;
  /** Events stored, as the inbox's lastSeq reports them: seqs 1..count. */
  count: number;
  seconds: number;
  non2xx: number;
  errors: number;
}

async function lastSeq(serverUrl: string, inbox: Inbox): Promise<number> {
  const response = await fetch(`${serverUrl}/api/inboxes/${encodeURIComponent(inbox.id)}`, {
    headers: { authorization: `Bearer ${inbox.token}` },
  });
  if (!response.ok) throw new Error(`reading inbox ${inbox.id}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { lastSeq: number }).lastSeq;
}

export async function fillBacklog(serverUrl: string, inbox: Inbox, count: number, body: string, connections = 50): Promise<Backlog> {
  const start = performance.now();
  let lastReply = start;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: inbox.ingestUrl,
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        connections,
        amount: count,
        timeout: 10,
      },
      (error, outcome) => (error ? reject(error) : resolve(outcome)),
    );
    // autocannon calls back on its next one-second tick, so the time is taken from the last reply.
    instance.on("response", () => (lastReply = performance.now()));
  });
  const seconds = (lastReply - start) / 1000;
  return { inbox, requested: count, count: await lastSeq(serverUrl, inbox), seconds, non2xx: result.non2xx, errors: result.errors };
}
