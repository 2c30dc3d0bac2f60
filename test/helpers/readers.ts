/*
 * How many live readers a running server has open, by transport, read from its own
 * /metrics gauge (tailhook_open_readers): the outside sign that a long-poll, SSE,
 * WebSocket or smee reader has reached the server, so a test can wait for it instead
 * of sleeping.
 */
import { waitUntil } from "./wait.js";

export type ReaderTransport = "long-poll" | "sse" | "websocket" | "smee";

export async function openReaders(server: { url: string; adminToken: string }, transport: ReaderTransport): Promise<number> {
  const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  if (response.status !== 200) throw new Error(`/metrics: ${response.status}`);
  const line = (await response.text()).split("\n").find((entry) => entry.startsWith(`tailhook_open_readers{transport="${transport}"} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Waits until the server counts at least `count` open readers on `transport`. */
export async function waitForReaders(server: { url: string; adminToken: string }, transport: ReaderTransport, count = 1): Promise<void> {
  await waitUntil(
    async () => (await openReaders(server, transport)) >= count,
    `${count} open ${transport} reader(s) in tailhook_open_readers`,
  );
}
