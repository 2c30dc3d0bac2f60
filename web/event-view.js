// One event: the request line, the raw headers in order, the body (pretty JSON, text
// or hex), its exact bytes as a download, "copy as curl" and the signature verdict.
import { fetchBodyBytes } from "./api.js";
import { copyButton, el, notify } from "./dom.js";
import { bodyBytes, bodyKind, curlCommand, formatBytes, formatTime, hexDump, prettyJson } from "./format.js";

const EXTENSIONS = {
  "application/json": "json",
  "text/plain": "txt",
  "text/html": "html",
  "application/xml": "xml",
  "text/xml": "xml",
  "message/rfc822": "eml",
};

function downloadName(envelope) {
  const type = (envelope.contentType ?? "").split(";")[0].trim().toLowerCase();
  return `event-${envelope.seq}.${EXTENSIONS[type] ?? "bin"}`;
}

function verdictBlock(envelope) {
  const verdict = envelope.verification;
  if (!verdict)
    return el("p", { class: "verdict none", "data-verdict": "none" }, "Signature: not checked (the inbox has no settings.verify).");
  return el(
    "p",
    { class: `verdict ${verdict.ok ? "ok" : "bad"}`, "data-verdict": verdict.ok ? "ok" : "bad" },
    el("strong", {}, verdict.ok ? "Signature verified" : "Signature failed"),
    ` (${verdict.scheme}): ${verdict.reason}`,
  );
}

function queryTable(query) {
  if (!query) return null;
  const rows = [...new URLSearchParams(query)].map(([name, value]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, value)));
  return rows.length ? el("table", { class: "pairs" }, el("tbody", {}, rows)) : null;
}

function headerTable(headers) {
  return el(
    "table",
    { class: "pairs headers" },
    el("caption", {}, `Headers (${headers.length}, as received, in order)`),
    el(
      "tbody",
      {},
      headers.map(([name, value]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, value))),
    ),
  );
}

function bodyBlock(session, inbox, envelope) {
  const bytes = bodyBytes(envelope);
  const views = { json: null, text: null, hex: () => hexDump(bytes) };
  if (envelope.bodyEncoding !== "base64") views.text = () => envelope.body;
  if (bodyKind(envelope) === "json") views.json = () => prettyJson(envelope.body);
  const pre = el("pre", { class: "body", tabindex: "0", "aria-label": "Body" });
  const choices = el("div", { class: "choices", role: "group", "aria-label": "Show the body as" });
  const show = (kind) => {
    pre.textContent = views[kind]();
    pre.dataset.view = kind;
    for (const button of choices.children) button.setAttribute("aria-pressed", String(button.dataset.view === kind));
  };
  for (const [kind, label] of [
    ["json", "Pretty JSON"],
    ["text", "Raw text"],
    ["hex", "Hex"],
  ]) {
    if (views[kind]) choices.append(el("button", { type: "button", class: "small", "data-view": kind, onclick: () => show(kind) }, label));
  }
  const download = el("button", { type: "button", class: "small", "data-action": "download" }, "Download exact bytes");
  download.addEventListener("click", async () => {
    try {
      const exact = await fetchBodyBytes(session.token, inbox.id, envelope.seq);
      const url = URL.createObjectURL(new Blob([exact], { type: "application/octet-stream" }));
      const link = el("a", { href: url, download: downloadName(envelope), class: "offscreen" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      notify(error.message, "error");
    }
  });
  const section = el(
    "section",
    { class: "body-section", "aria-label": "Body" },
    el(
      "h3",
      {},
      `Body (${formatBytes(bytes.length)}${envelope.contentType ? `, ${envelope.contentType}` : ""}${envelope.bodyEncoding === "base64" ? ", binary" : ""})`,
    ),
    el("div", { class: "actions" }, choices, download),
    pre,
  );
  if (bytes.length === 0) pre.textContent = "(empty)";
  else show(bodyKind(envelope));
  return section;
}

export function renderEvent(session, inbox, envelope) {
  const target = el("input", { id: "curl-target", value: inbox.ingestUrl, "aria-label": "Send the curl command to" });
  return el(
    "article",
    { class: "event", "data-seq": envelope.seq },
    el("h2", {}, `Event #${envelope.seq}`),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Request"),
      el(
        "dd",
        { class: "request-line" },
        el("code", {}, `${envelope.method} ${envelope.path || "/"}${envelope.query ? `?${envelope.query}` : ""}`),
      ),
      el("dt", {}, "Received"),
      el("dd", {}, formatTime(envelope.receivedAt)),
      el("dt", {}, "From"),
      el("dd", {}, envelope.remoteAddr ?? "—"),
      el("dt", {}, "Event id"),
      el("dd", {}, el("code", {}, envelope.id)),
      envelope.deliveries ? [el("dt", {}, "Deliveries"), el("dd", {}, String(envelope.deliveries))] : null,
      envelope.email
        ? [
            el("dt", {}, "Mail from"),
            el("dd", {}, envelope.email.mailFrom ?? "—"),
            el("dt", {}, "Mail to"),
            el("dd", {}, (envelope.email.rcptTo ?? []).join(", ")),
          ]
        : null,
    ),
    verdictBlock(envelope),
    queryTable(envelope.query) ? [el("h3", {}, "Query"), queryTable(envelope.query)] : null,
    headerTable(envelope.headers ?? []),
    bodyBlock(session, inbox, envelope),
    el(
      "div",
      { class: "curl" },
      el("label", { for: "curl-target" }, "Copy as curl, sent to"),
      target,
      copyButton("Copy as curl", () => curlCommand(envelope, target.value.trim()), "Copy this request as a curl command"),
    ),
  );
}
