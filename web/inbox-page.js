// One inbox: its facts and management, the live event list, the selected event and
// the consumers. The live connection lives as long as the page shows this inbox.
import { api, inboxPath } from "./api.js";
import { fill, el, notify } from "./dom.js";
import { followInbox } from "./follow.js";
import { formatBytes, formatRate, formatTime } from "./format.js";
import { ingestUrlLine, RATE_WINDOW, silenceFacts } from "./inboxes.js";
import { renderEvent } from "./event-view.js";
import { ConsumerList } from "./consumers.js";
import { manageForms } from "./manage.js";

// The list keeps the newest rows; older events stay readable by number.
const MAX_ROWS = 1000;
// Opening an inbox reads only its latest events, not everything retained.
const INITIAL_EVENTS = 200;

const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
  stopped: "Stopped",
};

export class InboxPage {
  constructor(main, session, inboxId) {
    this.main = main;
    this.session = session;
    this.inboxId = inboxId;
    this.inbox = null;
    this.selected = null;
    this.lastShownSeq = null;
    this.startSeq = null;
    this.recentTimes = [];
    this.tailSeq = 0;
    this.closed = false;
    this.status = el("p", { class: "live-state", "data-state": "connecting", role: "status" }, STATE_TEXT.connecting);
    this.banners = el("div", { class: "banners" });
    this.list = el("ol", { class: "event-list", reversed: true, "aria-label": "Events, newest first" });
    this.detail = el(
      "section",
      { class: "event-detail card", "aria-label": "Selected event", tabindex: "-1" },
      el("p", { class: "muted" }, "Select an event to see it."),
    );
    this.facts = el("dl", { class: "facts" });
    this.header = el("div", { class: "inbox-head" });
    this.consumers = new ConsumerList(session, inboxId, () => this.tailSeq);
    fill(
      main,
      this.header,
      el(
        "div",
        { class: "split" },
        el(
          "section",
          { class: "events card", "aria-labelledby": "events-title" },
          el("h2", { id: "events-title" }, "Events"),
          this.goToForm(),
          this.status,
          this.banners,
          this.list,
        ),
        this.detail,
      ),
      this.consumers.node,
    );
    this.load().catch((error) => notify(error.message, "error"));
  }

  async load() {
    this.inbox = await api(this.session.token, "GET", inboxPath(this.inboxId));
    if (this.closed) return;
    this.tailSeq = this.inbox.lastSeq;
    this.renderHeader();
    this.startSeq = this.inbox.lastSeq > INITIAL_EVENTS ? this.inbox.lastSeq - INITIAL_EVENTS : null;
    this.follower = followInbox({
      token: this.session.token,
      inboxId: this.inboxId,
      afterSeq: this.startSeq,
      onEvents: (events) => this.addEvents(events),
      onGone: (lost) => {
        if (this.lastShownSeq === null) {
          // Before the first event shown: older events this tab never showed, not a loss while watching.
          this.banner(`Events #1–#${lost.toSeq} are no longer retained.`, "retained");
          this.lastShownSeq = lost.toSeq;
          return;
        }
        this.banner(
          `Events #${lost.fromSeq}–#${lost.toSeq} were removed by retention before this tab could read them (410). Following continues from #${lost.toSeq + 1}.`,
          "gone",
        );
        // Accounted for: the next event expected is the first retained one.
        this.lastShownSeq = lost.toSeq;
      },
      onState: (state, detail) => {
        this.status.dataset.state = state;
        this.status.textContent = detail && state !== "live" ? `${STATE_TEXT[state]} (${detail})` : STATE_TEXT[state];
      },
    });
    this.consumers.start();
  }

  renderHeader() {
    const inbox = this.inbox;
    const wasOpen = this.header.querySelector("details.manage")?.open ?? false;
    fill(
      this.facts,
      el("dt", {}, "Events received"),
      el("dd", { "data-field": "count" }, String(this.tailSeq)),
      el("dt", {}, "Last event"),
      el("dd", { "data-field": "last" }, "—"),
      el("dt", {}, "Rate (last 20)"),
      el("dd", { "data-field": "rate" }, "—"),
      ...silenceFacts(inbox),
    );
    this.showActivity();
    fill(
      this.header,
      this.session.admin ? el("p", {}, el("a", { href: "#/" }, "← All inboxes")) : null,
      el("h1", {}, inbox.name ?? inbox.id),
      inbox.name ? el("p", { class: "muted" }, inbox.id) : null,
      ingestUrlLine(inbox),
      this.facts,
      this.session.admin ? manageForms(this.session, inbox, (updated) => this.updated(updated)) : null,
    );
    // A re-render after a change keeps the manage panel as the user left it.
    const manage = this.header.querySelector("details.manage");
    if (manage && wasOpen) manage.open = true;
  }

  updated(inbox) {
    if (!inbox) {
      this.close();
      location.hash = "#/";
      return;
    }
    this.inbox = { ...inbox, lastSeq: Math.max(inbox.lastSeq, this.tailSeq) };
    this.renderHeader();
  }

  /** Any event by number, also ones older than the list. */
  goToForm() {
    const number = el("input", { id: "go-to-seq", type: "number", min: "1", inputmode: "numeric", required: true });
    const form = el(
      "form",
      { class: "go-to", "aria-label": "Go to event" },
      el("label", { for: "go-to-seq" }, "Go to event #"),
      number,
      el("button", { type: "submit", class: "small" }, "Open"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      location.hash = `#/inbox/${encodeURIComponent(this.inboxId)}/event/${Number(number.value)}`;
    });
    return form;
  }

  banner(text, kind) {
    this.banners.append(el("p", { class: `banner ${kind}`, role: "alert", "data-banner": kind }, text));
  }

  addEvents(events) {
    const first = events[0];
    if (this.lastShownSeq === null && this.startSeq !== null && first.seq === this.startSeq + 1) {
      this.banner(`Showing events from #${first.seq} on; open older ones with "Go to event".`, "older");
    } else if (this.lastShownSeq === null && first.seq > 1) {
      this.banner(`Events #1–#${first.seq - 1} are no longer retained.`, "retained");
    } else if (this.lastShownSeq !== null && first.seq !== this.lastShownSeq + 1) {
      // Never expected (the server answers 410 instead of skipping); shown if it happens.
      this.banner(`Events #${this.lastShownSeq + 1}–#${first.seq - 1} were not received.`, "gone");
    }
    for (const envelope of events) this.list.prepend(this.row(envelope));
    while (this.list.childElementCount > MAX_ROWS) this.list.lastElementChild.remove();
    this.lastShownSeq = events[events.length - 1].seq;
    this.tailSeq = Math.max(this.tailSeq, this.lastShownSeq);
    this.recentTimes = [...this.recentTimes, ...events.map((envelope) => envelope.receivedAt)].slice(-RATE_WINDOW);
    this.showActivity();
    this.consumers.tailMoved();
  }

  /** Count, last event and rate from the live list, which always holds the latest events. */
  showActivity() {
    const field = (name) => this.facts.querySelector(`[data-field="${name}"]`);
    const times = this.recentTimes;
    if (!field("count")) return;
    field("count").textContent = String(this.tailSeq);
    field("last").textContent = times.length ? formatTime(times[times.length - 1]) : "—";
    field("rate").textContent = formatRate(times.length - 1, times[0], times[times.length - 1]);
  }

  row(envelope) {
    const verdict = envelope.verification
      ? el(
          "span",
          { class: `badge ${envelope.verification.ok ? "ok" : "bad"}` },
          envelope.verification.ok ? "verified" : "signature failed",
        )
      : null;
    const link = el(
      "a",
      { href: `#/inbox/${encodeURIComponent(this.inboxId)}/event/${envelope.seq}`, class: "event-row", "data-seq": envelope.seq },
      el("span", { class: "seq" }, `#${envelope.seq}`),
      el("span", { class: "method" }, envelope.method),
      el("span", { class: "path" }, `${envelope.path || "/"}${envelope.query ? `?${envelope.query}` : ""}`),
      el("span", { class: "size" }, formatBytes(envelope.size ?? 0)),
      el("time", { datetime: envelope.receivedAt }, formatTime(envelope.receivedAt)),
      verdict,
    );
    if (envelope.seq === this.selected) link.setAttribute("aria-current", "true");
    return el("li", {}, link);
  }

  async select(seq) {
    this.selected = seq;
    for (const row of this.list.querySelectorAll("[aria-current]")) row.removeAttribute("aria-current");
    if (seq === null) return;
    this.list.querySelector(`[data-seq="${seq}"]`)?.setAttribute("aria-current", "true");
    try {
      const envelope = await api(this.session.token, "GET", `${inboxPath(this.inboxId)}/events/${seq}`);
      if (this.selected !== seq || this.closed) return;
      const inbox = this.inbox ?? (await api(this.session.token, "GET", inboxPath(this.inboxId)));
      fill(this.detail, renderEvent(this.session, inbox, envelope));
    } catch (error) {
      fill(this.detail, el("p", { class: "problem", role: "alert" }, `Event #${seq}: ${error.message}`));
    }
    // Focus moves to the event (keyboard users read on from there); scroll only when it is off-screen.
    this.detail.focus({ preventScroll: true });
    const top = this.detail.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.8) this.detail.scrollIntoView({ block: "start" });
  }

  close() {
    this.closed = true;
    this.follower?.stop();
    this.consumers.stop();
  }
}
