// The inbox's consumers and their lag: how many retained events each has not acked,
// and (when the server says) how old the oldest of them is. Refreshed every few
// seconds and whenever the live list sees new events.
import { api, inboxPath } from "./api.js";
import { fill, el, notify } from "./dom.js";
import { formatAge, formatTime } from "./format.js";

const REFRESH_MS = 5000;

/** Events lag: the server's, else the tail minus the consumer's position. */
export function eventsLag(consumer, tailSeq) {
  if (typeof consumer.lag?.events === "number") return consumer.lag.events;
  return Math.max(0, tailSeq - (consumer.committedSeq ?? 0));
}

/** Age of the oldest unacked event in seconds, when the server gives it. */
export function secondsLag(consumer) {
  const lag = consumer.lag ?? {};
  if (typeof lag.seconds === "number") return lag.seconds;
  if (typeof lag.oldestUnackedAgeSeconds === "number") return lag.oldestUnackedAgeSeconds;
  return null;
}

export class ConsumerList {
  constructor(session, inboxId, tailSeq) {
    this.session = session;
    this.inboxId = inboxId;
    this.tailSeq = tailSeq;
    this.body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
    this.node = el(
      "section",
      { class: "consumers card", "aria-labelledby": "consumers-title" },
      el("h2", { id: "consumers-title" }, "Consumers"),
      this.body,
    );
    this.timer = null;
    this.pending = null;
  }

  start() {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    clearTimeout(this.pending);
  }

  /** New events arrived: refresh soon, once for a burst. */
  tailMoved() {
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.refresh(), 300);
  }

  async refresh() {
    try {
      const { consumers } = await api(this.session.token, "GET", `${inboxPath(this.inboxId)}/consumers`);
      this.render(consumers);
    } catch (error) {
      // Keep the last table (it says when it was read) and say why it is not newer.
      if (this.readAt) this.render(this.last, `Could not refresh (${error.message}); as of ${this.readAt.toLocaleTimeString()}.`);
      else fill(this.body, el("p", { class: "problem" }, `Consumers: ${error.message}`));
      return;
    }
    this.readAt = new Date();
  }

  render(consumers, problem = null) {
    this.last = consumers;
    if (consumers.length === 0) {
      fill(
        this.body,
        problem ? el("p", { class: "problem" }, problem) : null,
        el("p", { class: "muted" }, "No consumers. `tailhook forward --consumer NAME` or PUT …/consumers/NAME creates one."),
      );
      return;
    }
    const tail = this.tailSeq();
    const rows = consumers.map((consumer) => {
      const remove = el("button", { type: "button", class: "small danger", "aria-label": `Delete consumer ${consumer.name}` }, "Delete");
      remove.addEventListener("click", () => this.remove(consumer.name));
      const seconds = secondsLag(consumer);
      return el(
        "tr",
        { "data-consumer": consumer.name },
        el("th", { scope: "row" }, consumer.name),
        el("td", { "data-label": "Acked up to" }, `#${consumer.committedSeq}`),
        el("td", { "data-label": "Lag (events)", "data-field": "lag-events" }, String(eventsLag(consumer, tail))),
        el("td", { "data-label": "Oldest unacked", "data-field": "lag-seconds" }, seconds === null ? "—" : formatAge(seconds)),
        el("td", { "data-label": "Lost to retention" }, String(consumer.lag?.lostEvents ?? 0)),
        el("td", { "data-label": "Last ack" }, formatTime(consumer.lastAckAt)),
        el("td", {}, remove),
      );
    });
    fill(
      this.body,
      problem ? el("p", { class: "problem" }, problem) : null,
      el(
        "table",
        { class: "consumer-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["Name", "Acked up to", "Lag (events)", "Oldest unacked", "Lost to retention", "Last ack", ""].map((h) =>
              el("th", { scope: "col" }, h),
            ),
          ),
        ),
        el("tbody", {}, rows),
      ),
    );
  }

  async remove(name) {
    if (!confirm(`Delete consumer ${name}? Its position is lost.`)) return;
    try {
      await api(this.session.token, "DELETE", `${inboxPath(this.inboxId)}/consumers/${encodeURIComponent(name)}`);
      notify(`Consumer ${name} deleted.`);
      this.refresh();
    } catch (error) {
      notify(`Not deleted: ${error.message}`, "error");
    }
  }
}
