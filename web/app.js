// The inspector's entry: sign-in, and a hash router (#/, #/inbox/<id>[/event/<seq>]).
// The hash never reaches the server, and the token never appears in it.
import { api, ApiError, clearSession, inboxPath, loadSession, saveSession } from "./api.js";
import { fill, el, notify } from "./dom.js";
import { renderInboxList } from "./inboxes.js";
import { InboxPage } from "./inbox-page.js";

const main = document.getElementById("main");
let page = null;

function parseRoute() {
  const match = /^#\/inbox\/([^/]+)(?:\/event\/(\d+))?$/.exec(location.hash);
  if (match) return { inboxId: decodeURIComponent(match[1]), seq: match[2] ? Number(match[2]) : null };
  return { inboxId: null, seq: null };
}

function showWho(session) {
  document.getElementById("who").textContent = session ? (session.admin ? "admin" : `inbox ${session.inboxId}`) : "";
  document.getElementById("sign-out").hidden = !session;
}

async function signIn(token, inboxId) {
  try {
    await api(token, "GET", "api/inboxes");
    return { token, inboxId: null, admin: true };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
  if (!inboxId) throw new Error("not the admin token; for an inbox token, give the inbox id too");
  await api(token, "GET", inboxPath(inboxId));
  return { token, inboxId, admin: false };
}

function renderSignIn() {
  const token = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true });
  const inbox = el("input", { id: "inbox-id", name: "inbox", autocomplete: "off", placeholder: "inb_… (inbox token only)" });
  const problem = el("p", { class: "problem", role: "alert" });
  const form = el(
    "form",
    { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    el("h1", { id: "sign-in-title" }, "Sign in"),
    el(
      "p",
      {},
      "The admin token shows every inbox; an inbox token shows that inbox. The token stays in this tab (session storage) and is sent only in the Authorization header.",
    ),
    el("label", { for: "token" }, "Token"),
    token,
    el("label", { for: "inbox-id" }, "Inbox id"),
    inbox,
    el("button", { type: "submit", class: "primary" }, "Sign in"),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      const session = await signIn(token.value.trim(), inbox.value.trim());
      saveSession(session);
      location.hash = session.admin ? "#/" : `#/inbox/${encodeURIComponent(session.inboxId)}`;
      route();
    } catch (error) {
      problem.textContent = `Sign-in failed: ${error.message}`;
    }
  });
  fill(main, form);
  token.focus();
}

function route() {
  const session = loadSession();
  showWho(session);
  if (!session) {
    page?.close();
    page = null;
    return renderSignIn();
  }
  let { inboxId, seq } = parseRoute();
  if (!session.admin && inboxId !== session.inboxId) {
    inboxId = session.inboxId;
    history.replaceState(null, "", `#/inbox/${encodeURIComponent(inboxId)}`);
  }
  if (!inboxId) {
    page?.close();
    page = null;
    return renderInboxList(main, session).catch((error) => notify(error.message, "error"));
  }
  // The same inbox keeps its live connection; only the selected event changes.
  if (page?.inboxId !== inboxId) {
    page?.close();
    page = new InboxPage(main, session, inboxId);
  }
  page.select(seq);
}

document.getElementById("sign-out").addEventListener("click", () => {
  clearSession();
  location.hash = "#/";
  route();
});
window.addEventListener("hashchange", route);
route();
