// Following an inbox live: Server-Sent Events read with fetch (EventSource cannot send
// the Authorization header). The position is the seq of the last event handed on, so
// every reconnect (network cut, a sleeping tab, the server's 60 s stream end) asks for
// exactly what comes after it: no gap, no repeat. A 410 (retention removed events
// before we read them) is reported with the lost range, then following goes on from
// the earliest retained event.
import { authHeaders, streamPath } from "./api.js";

const OFFSET_EPOCH = "0".repeat(16);
const SILENCE_LIMIT_MS = 40_000;

export function offsetAfter(seq) {
  return `${OFFSET_EPOCH}_${String(seq).padStart(16, "0")}`;
}

export function seqOfOffset(offset) {
  const match = /^\d{16}_(\d{16})$/.exec(offset ?? "");
  return match ? Number(match[1]) : undefined;
}

/** Splits an SSE byte stream into {event, data} records. */
async function* sseRecords(body, signal, heard) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const abort = () => reader.cancel().catch(() => undefined);
  signal.addEventListener("abort", abort, { once: true });
  let buffer = "";
  let event = "message";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      heard();
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) yield { event, data: data.join("\n") };
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (name === "event") event = value;
        else if (name === "data") data.push(value);
      }
    }
  } finally {
    signal.removeEventListener("abort", abort);
  }
}

/**
 * Follows inbox `inboxId` from after `afterSeq` (null: from the earliest retained event).
 * Callbacks: onEvents(envelopes), onGone({fromSeq, toSeq}), onState(state, detail) with
 * state "connecting" | "live" | "reconnecting" | "stopped". Returns {stop()}.
 */
export function followInbox({ token, inboxId, afterSeq = null, onEvents, onGone, onState }) {
  const controller = new AbortController();
  let lastSeq = afterSeq;
  let wake = () => undefined;
  const retryNow = () => wake();
  window.addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", retryNow);

  function pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  function take(envelopes) {
    const fresh = envelopes.filter((envelope) => lastSeq === null || envelope.seq > lastSeq);
    if (fresh.length === 0) return;
    lastSeq = fresh[fresh.length - 1].seq;
    onEvents(fresh);
  }

  async function readOnce() {
    // One request; dropped when silent for longer than two of the server's 15 s keep-alives
    // (a connection that died without an error, e.g. across a laptop's sleep).
    const request = new AbortController();
    const stopRequest = () => request.abort();
    controller.signal.addEventListener("abort", stopRequest, { once: true });
    let watchdog;
    const heard = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(stopRequest, SILENCE_LIMIT_MS);
    };
    try {
      heard();
      return await readWith(request.signal, heard);
    } finally {
      clearTimeout(watchdog);
      controller.signal.removeEventListener("abort", stopRequest);
    }
  }

  async function readWith(signal, heard) {
    const offset = lastSeq === null ? "-1" : offsetAfter(lastSeq);
    const response = await fetch(`${streamPath(inboxId)}?offset=${offset}&live=sse`, {
      headers: authHeaders(token),
      signal,
      cache: "no-store",
    });
    if (response.status === 410) {
      const body = await response.json().catch(() => ({}));
      const earliest = seqOfOffset(body?.error?.earliestOffset);
      if (earliest === undefined) throw new Error("410 without earliestOffset");
      onGone({ fromSeq: (lastSeq ?? 0) + 1, toSeq: earliest });
      lastSeq = earliest;
      return "again";
    }
    if (response.status === 401 || response.status === 404) {
      const body = await response.json().catch(() => ({}));
      onState("stopped", body?.error?.message ?? `HTTP ${response.status}`);
      return "stop";
    }
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    onState("connecting");
    for await (const record of sseRecords(response.body, signal, heard)) {
      if (record.event === "data") take(JSON.parse(record.data));
      else if (record.event === "control") {
        const control = JSON.parse(record.data);
        const next = seqOfOffset(control.streamNextOffset);
        // An empty stream read from the start: remember where it was, so a reconnect is exact.
        if (lastSeq === null && next !== undefined) lastSeq = next;
        if (control.upToDate) onState("live");
      }
    }
    return "again";
  }

  (async () => {
    let failures = 0;
    while (!controller.signal.aborted) {
      try {
        const outcome = await readOnce();
        if (outcome === "stop") break;
        failures = 0;
      } catch (error) {
        if (controller.signal.aborted) break;
        failures += 1;
        onState("reconnecting", error instanceof Error ? error.message : String(error));
        // Back off to at most 5 s; coming online or back to the tab retries at once.
        await pause(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
    window.removeEventListener("online", retryNow);
    document.removeEventListener("visibilitychange", retryNow);
  })();

  return {
    stop() {
      controller.abort();
      wake();
    },
    lastSeq: () => lastSeq,
  };
}
