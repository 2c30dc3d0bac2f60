// A single-page app holding a stream's state over one WebSocket (docs/key-frames.md, "WebSocket").
// It starts from a key frame (offset=snapshot), applies every change with @durable-streams/state's
// MaterializedState, resumes from the last offset after a dropped connection, and on a "gone" frame
// (its offset fell behind retention or compaction) starts again from a fresh key frame.
import { MaterializedState, isChangeEvent, isControlEvent } from "./durable-streams-state.js";

const $ = (id) => document.getElementById(id);
const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

const state = new MaterializedState();
let socket = null;
let stream = "";
let token = "";
let offset = "snapshot";
let retryMs = MIN_RETRY_MS;
let counts = { reconnects: 0, resyncs: 0 };
let ended = false;

function setStatus(name) {
  $("status").dataset.state = name;
  $("status").textContent = name;
}

/** An inbox's messages are event envelopes; this app reads inboxes whose event bodies are state changes. */
function changeOf(message) {
  if (message === null || typeof message !== "object" || typeof message.body !== "string") return message;
  const bytes = message.bodyEncoding === "base64" ? Uint8Array.from(atob(message.body), (c) => c.charCodeAt(0)) : null;
  const text = bytes ? new TextDecoder().decode(bytes) : message.body;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function apply(message) {
  const change = changeOf(message);
  if (change === null || typeof change !== "object" || typeof change.headers !== "object") return;
  if (isControlEvent(change)) {
    // A reset (or a new key frame's start) means: the state so far no longer holds.
    if (change.headers.control === "reset" || change.headers.control === "snapshot-start") state.clear();
  } else if (isChangeEvent(change)) {
    state.apply(change);
  }
}

function render() {
  const rows = [];
  for (const type of [...state.types].sort()) {
    for (const [key, value] of [...state.getType(type)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const row = document.createElement("tr");
      row.dataset.key = `${type}/${key}`;
      for (const text of [type, key, JSON.stringify(value)]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      rows.push(row);
    }
  }
  $("rows").replaceChildren(...rows);
  $("offset").textContent = offset;
  $("reconnects").textContent = String(counts.reconnects);
  $("resyncs").textContent = String(counts.resyncs);
}

function onFrame(frame) {
  switch (frame.type) {
    case "snapshot":
      for (const message of frame.messages) apply(message);
      offset = frame.nextOffset;
      break;
    case "message":
      apply(frame.message);
      offset = frame.offset;
      break;
    case "up-to-date":
      retryMs = MIN_RETRY_MS;
      setStatus("live");
      break;
    case "closed":
      ended = true;
      setStatus("closed");
      break;
    case "gone":
      // Deltas were lost: the next connection reads a key frame, which replaces the whole state.
      counts.resyncs++;
      offset = "snapshot";
      setStatus("re-syncing");
      break;
  }
  render();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const path = stream.split("/").map(encodeURIComponent).join("/");
  const query = new URLSearchParams({ offset });
  if (token) query.set("token", token);
  socket = new WebSocket(`${scheme}//${location.host}/v1/ws/stream/${path}?${query}`);
  socket.onmessage = (event) => onFrame(JSON.parse(event.data));
  socket.onclose = (event) => {
    socket = null;
    if (ended) return;
    // The server closed it for good (a bad request, a lost token, the stream deleted): retrying would not help.
    if (event.code === 4400 || event.code === 4401 || event.code === 4404) return setStatus("failed");
    const resync = $("status").dataset.state === "re-syncing";
    if (!resync) setStatus("reconnecting");
    counts.reconnects++;
    render();
    setTimeout(connect, resync ? 0 : retryMs);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  };
}

$("connect").addEventListener("submit", (event) => {
  event.preventDefault();
  stream = $("stream").value.trim();
  token = $("token").value;
  sessionStorage.setItem("state-app", JSON.stringify({ stream, token }));
  if (socket) socket.close();
  state.clear();
  offset = "snapshot";
  counts = { reconnects: 0, resyncs: 0 };
  ended = false;
  setStatus("connecting");
  render();
  connect();
});

const saved = JSON.parse(sessionStorage.getItem("state-app") ?? "null");
const fromQuery = new URLSearchParams(location.search).get("stream");
if (fromQuery ?? saved?.stream) $("stream").value = fromQuery ?? saved.stream;
if (saved?.token) $("token").value = saved.token;
