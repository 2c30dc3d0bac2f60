/*
 * The live baseline: a node:http relay that stores nothing. A POST is read fully,
 * answered 200, and its body pushed to every open SSE reader in the framing tailhook
 * uses for an inbox (`event: data` with a JSON array of envelopes whose `body` is the
 * request body), so the same reader code measures both. A GET opens an SSE response
 * and sends one `event: control` at once, which tells the reader it is attached.
 * Run as its own child process, like tailhook.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const ACK = JSON.stringify({ ok: true, id: "evt_000000000000000000000000", seq: 1 });
const readers = new Set<ServerResponse>();

const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("event: control\ndata:{}\n\n");
    readers.add(res);
    res.once("close", () => readers.delete(res));
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const event = `event: data\ndata:[${JSON.stringify({ body: Buffer.concat(chunks).toString("utf8") })}]\n\n`;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(ACK);
    for (const reader of readers) reader.write(event);
  });
});

server.listen(0, "127.0.0.1", 4096, () => {
  const { port } = server.address() as AddressInfo;
  process.stderr.write(`relay: listening on http://127.0.0.1:${port}\n`);
});

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
