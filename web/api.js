// The JSON API as the inspector uses it: the token from session storage, always in the
// Authorization header (never in a URL), and errors as ApiError with the server's code.
// Paths are relative to the page (always the server's `/`), so the inspector also works
// behind a reverse proxy that serves tailhook under a path prefix.
const SESSION_KEY = "tailhook.session";

/** @returns {{token: string, inboxId: string | null, admin: boolean} | null} */
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export function authHeaders(token) {
  return { authorization: `Bearer ${token}` };
}

/** A JSON request; the reply's JSON (undefined for 204), or an ApiError. */
export async function api(token, method, path, body) {
  const headers = authHeaders(token);
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return undefined;
  const text = await response.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = parsed?.error ?? {};
    throw new ApiError(response.status, error.code ?? "http_error", error.message ?? `HTTP ${response.status}`, parsed);
  }
  return parsed;
}

/** The exact body bytes of one event. */
export async function fetchBodyBytes(token, inboxId, seq) {
  const response = await fetch(`api/inboxes/${encodeURIComponent(inboxId)}/events/${seq}/body`, { headers: authHeaders(token) });
  if (!response.ok) throw new ApiError(response.status, "http_error", `the body could not be read (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

export const inboxPath = (id) => `api/inboxes/${encodeURIComponent(id)}`;
export const streamPath = (id) => `v1/stream/inbox/${encodeURIComponent(id)}`;
