/*
 * The silence alarm over HTTP, on either store: an inbox with settings.expectEvery is
 * `silent` in its view once that long passed without an event, and says since when;
 * an event or a longer expectEvery ends it; the views carry lastEventAt. Waits are on
 * conditions (a 1-second expectEvery running out), never fixed sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, testBackend, type TestServer } from "./helpers/server.js";
import { waitUntil } from "./helpers/wait.js";

interface InboxView {
  id: string;
  createdAt: string;
  lastSeq: number;
  lastEventAt: string | null;
  silent: boolean;
  silentSince: string | null;
  settings: Record<string, unknown>;
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

async function view(id: string): Promise<InboxView> {
  const response = await server.admin(`/api/inboxes/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as InboxView;
}

async function patch(id: string, body: unknown): Promise<Response> {
  return server.admin(`/api/inboxes/${id}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function ingest(url: string): Promise<{ seq: number }> {
  const response = await fetch(url, { method: "POST", body: "{}" });
  expect(response.status).toBe(200);
  return (await response.json()) as { seq: number };
}

const plus = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString();

describe(`silence alarm (${testBackend})`, () => {
  it("an inbox without expectEvery is never silent; lastEventAt is the newest event's receive time", async () => {
    const inbox = await server.createInbox();
    expect(await view(inbox.id)).toMatchObject({ lastSeq: 0, lastEventAt: null, silent: false, silentSince: null });
    await ingest(inbox.ingestUrl);
    await ingest(inbox.ingestUrl);
    const event = (await (await server.admin(`/api/inboxes/${inbox.id}/events/2`)).json()) as { receivedAt: string };
    expect(await view(inbox.id)).toMatchObject({ lastSeq: 2, lastEventAt: event.receivedAt, silent: false, silentSince: null });
  });

  it("goes silent expectEvery seconds after creation, in the inbox view and the list", async () => {
    const inbox = await server.createInbox({ settings: { expectEvery: 1 } });
    const created = await view(inbox.id);
    expect(created.settings).toMatchObject({ expectEvery: 1 });
    await waitUntil(async () => (await view(inbox.id)).silent, "the inbox to go silent");
    const silent = await view(inbox.id);
    expect(silent).toMatchObject({ lastEventAt: null, silent: true, silentSince: plus(created.createdAt, 1) });
    const list = (await (await server.admin("/api/inboxes")).json()) as { inboxes: InboxView[] };
    expect(list.inboxes.find((listed) => listed.id === inbox.id)).toMatchObject({ silent: true, silentSince: silent.silentSince });
  });

  it("a longer expectEvery ends it; after an event it counts from that event; null turns it off", async () => {
    const inbox = await server.createInbox({ settings: { expectEvery: 1 } });
    await waitUntil(async () => (await view(inbox.id)).silent, "the inbox to go silent");

    const longer = await patch(inbox.id, { settings: { expectEvery: 3600 } });
    expect(longer.status).toBe(200);
    expect(await longer.json()).toMatchObject({ silent: false, silentSince: null });

    await ingest(inbox.ingestUrl);
    const afterEvent = await view(inbox.id);
    expect(afterEvent).toMatchObject({ lastSeq: 1, silent: false, silentSince: null });
    expect(afterEvent.lastEventAt).not.toBeNull();

    expect((await patch(inbox.id, { settings: { expectEvery: 1 } })).status).toBe(200);
    await waitUntil(async () => (await view(inbox.id)).silent, "the inbox to go silent after its event");
    expect(await view(inbox.id)).toMatchObject({ silent: true, silentSince: plus(afterEvent.lastEventAt!, 1) });

    const off = await patch(inbox.id, { settings: { expectEvery: null } });
    expect(off.status).toBe(200);
    const offView = (await off.json()) as InboxView;
    expect(offView).toMatchObject({ silent: false, silentSince: null });
    expect(offView.settings.expectEvery).toBeUndefined();
  });

  it("refuses an expectEvery that is not a whole number of seconds from 1 to 366 days, changing nothing", async () => {
    const inbox = await server.createInbox({ settings: { expectEvery: 600 } });
    for (const bad of [0, -5, 2.5, "60", 366 * 86_400 + 1]) {
      const response = await patch(inbox.id, { settings: { expectEvery: bad } });
      expect(response.status, JSON.stringify(bad)).toBe(400);
      const body = (await response.json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/settings\.expectEvery must be an integer from 1 to 31622400/);
    }
    expect((await view(inbox.id)).settings).toMatchObject({ expectEvery: 600 });
    const refused = await server.admin("/api/inboxes", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: { expectEvery: 0 } }),
    });
    expect(refused.status).toBe(400);
  });
});
