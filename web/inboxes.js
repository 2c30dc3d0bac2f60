// The inbox list (admin): name, ingest URL, counts, last event and rate; creating one.
import { api, ApiError, inboxPath } from "./api.js";
import { fill, copyButton, el, notify } from "./dom.js";
import { formatRate, formatTime } from "./format.js";

export const RATE_WINDOW = 20;

/**
 * Last event time (from the inbox view) and the rate over the last few events, which
 * takes one event read. That older event may be gone to retention; then the rate is
 * over what is still there.
 */
export async function inboxStats(token, inbox) {
  if (inbox.lastSeq === 0) return { lastAt: null, rate: "—" };
  const fromSeq = Math.max(1, inbox.lastSeq - RATE_WINDOW + 1);
  const first =
    fromSeq < inbox.lastSeq && inbox.lastEventAt
      ? await api(token, "GET", `${inboxPath(inbox.id)}/events/${fromSeq}`).catch((error) => {
          if (error instanceof ApiError && (error.status === 410 || error.status === 404)) return null;
          throw error;
        })
      : null;
  return {
    lastAt: inbox.lastEventAt ?? null,
    rate: first ? formatRate(inbox.lastSeq - first.seq, first.receivedAt, inbox.lastEventAt) : "—",
  };
}

/**
 * The silence alarm (settings.expectEvery): "silent since …" when no event came in time,
 * so a sender that stopped calling shows on the page; nothing when no alarm is set.
 */
export function silenceFacts(inbox) {
  const every = inbox.settings?.expectEvery;
  if (!every) return [];
  const state = inbox.silent
    ? el("dd", { "data-field": "silence", class: "alert" }, `Silent since ${formatTime(inbox.silentSince)}`)
    : el("dd", { "data-field": "silence" }, `OK (expects an event every ${every} s)`);
  return [el("dt", {}, "Silence alarm"), state];
}

export function ingestUrlLine(inbox) {
  return el(
    "div",
    { class: "ingest" },
    el("code", { class: "url" }, inbox.ingestUrl),
    copyButton("Copy", inbox.ingestUrl, `Copy the ingest URL of ${inbox.name ?? inbox.id}`),
  );
}

function inboxCard(session, inbox) {
  const last = el("dd", { "data-field": "last" }, "…");
  const rate = el("dd", { "data-field": "rate" }, "…");
  inboxStats(session.token, inbox).then(
    (stats) => {
      last.textContent = formatTime(stats.lastAt);
      rate.textContent = stats.rate;
    },
    () => (last.textContent = rate.textContent = "?"),
  );
  return el(
    "li",
    { class: "card inbox", "data-inbox": inbox.id },
    el("h2", {}, el("a", { href: `#/inbox/${encodeURIComponent(inbox.id)}` }, inbox.name ?? inbox.id)),
    inbox.name ? el("p", { class: "muted" }, inbox.id) : null,
    ingestUrlLine(inbox),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Events received"),
      el("dd", { "data-field": "count" }, String(inbox.lastSeq)),
      el("dt", {}, "Last event"),
      last,
      el("dt", {}, "Rate (last 20)"),
      rate,
      ...silenceFacts(inbox),
    ),
  );
}

function createForm(session, onCreated) {
  const name = el("input", { id: "new-name", name: "name", autocomplete: "off", placeholder: "e.g. github-prod" });
  const settings = el("textarea", {
    id: "new-settings",
    name: "settings",
    rows: 3,
    spellcheck: "false",
    placeholder: '{"retention": {"maxEvents": 10000}}',
  });
  const form = el(
    "form",
    { class: "card create", "aria-labelledby": "create-title" },
    el("h2", { id: "create-title" }, "New inbox"),
    el("label", { for: "new-name" }, "Name (optional)"),
    name,
    el("label", { for: "new-settings" }, "Settings, JSON (optional; see docs/http-api.md)"),
    settings,
    el("button", { type: "submit", class: "primary" }, "Create inbox"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = {};
      if (name.value.trim()) body.name = name.value.trim();
      if (settings.value.trim()) body.settings = JSON.parse(settings.value);
      onCreated(await api(session.token, "POST", "api/inboxes", body));
    } catch (error) {
      notify(`Not created: ${error.message}`, "error");
    }
  });
  return form;
}

/** Shown once after creating: the inbox token is never shown again. */
function createdNotice(inbox) {
  return el(
    "section",
    { class: "card created", role: "alert" },
    el("h2", {}, `Created ${inbox.name ?? inbox.id}`),
    el("p", {}, "Its token is shown only now. Keep it to read this inbox without the admin token."),
    el(
      "div",
      { class: "ingest" },
      el("code", { class: "url", "data-field": "token" }, inbox.token),
      copyButton("Copy", inbox.token, "Copy the inbox token"),
    ),
    ingestUrlLine(inbox),
  );
}

export async function renderInboxList(main, session, created = null) {
  const { inboxes } = await api(session.token, "GET", "api/inboxes");
  const rerender = (inbox) => renderInboxList(main, session, inbox).catch((error) => notify(error.message, "error"));
  fill(
    main,
    el("h1", {}, "Inboxes"),
    created ? createdNotice(created) : null,
    inboxes.length === 0 ? el("p", { class: "muted" }, "No inboxes yet.") : null,
    el(
      "ul",
      { class: "inbox-list" },
      inboxes.map((inbox) => inboxCard(session, inbox)),
    ),
    createForm(session, rerender),
  );
}
