/*
 * The baseline: a bare node:http server that reads each body fully and answers 200
 * with a small JSON ack, i.e. what ingest costs with no routing, storage or fsync.
 * Run as its own child process, like tailhook, so both compete for the CPU alike.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const ACK = JSON.stringify({ ok: true, id: "evt_000000000000000000000000", seq: 1 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    Buffer.concat(chunks); // assembled as tailhook does, then dropped
    res.writeHead(200, { "content-type": "application/json" });
    res.end(ACK);
  });
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stderr.write(`bare: listening on http://127.0.0.1:${port}\n`);
});

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
