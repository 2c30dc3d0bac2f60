/*
 * Stream-Cursor values (Durable Streams §10.1): 20-second intervals since
 * 2024-10-09T00:00:00Z, never going backwards for a client that echoes one, so CDN
 * caches of live reads cannot loop.
 */
const EPOCH_MS = Date.UTC(2024, 9, 9);
const INTERVAL_MS = 20_000;

export function nextCursor(clientCursor: string | undefined, now = Date.now()): string {
  const current = Math.floor((now - EPOCH_MS) / INTERVAL_MS);
  const echoed = clientCursor !== undefined && /^\d{1,15}$/.test(clientCursor) ? Number(clientCursor) : -1;
  if (echoed < current) return String(current);
  const jitterSeconds = 1 + Math.floor(Math.random() * 3600);
  return String(echoed + Math.max(1, Math.ceil((jitterSeconds * 1000) / INTERVAL_MS)));
}
