/* Creating inboxes and ingesting into them over HTTP, as a sender and an admin would. */
import { expect } from "vitest";

export interface CreatedInbox {
  id: string;
  name: string | null;
  token: string;
  ingestUrl: string;
  streamUrl: string;
  smeeUrl: string;
}

/** POST /api/inboxes on a running server (in this process or a child) with its admin token. */
export async function createInboxOn(
  server: { url: string; adminToken: string },
  body: Record<string, unknown> = {},
): Promise<CreatedInbox> {
  const response = await fetch(`${server.url}/api/inboxes`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  expect(response.status, text).toBe(201);
  return JSON.parse(text) as CreatedInbox;
}

/** POSTs `count` webhooks one after the other (each stored before the next); returns their seqs. */
export async function ingestMany(ingestUrl: string, count: number, body: (i: number) => string = numbered("")): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(ingestUrl, { method: "POST", body: body(i) });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    seqs.push((JSON.parse(text) as { seq: number }).seq);
  }
  return seqs;
}

/** Bodies `{"n":"<prefix><i>"}`, so a test can tell its batches apart; `{"n":<i>}` without a prefix. */
export function numbered(prefix: string): (i: number) => string {
  return (i) => JSON.stringify({ n: prefix === "" ? i : `${prefix}${i}` });
}
