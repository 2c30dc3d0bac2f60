/*
 * A reverse proxy that serves a server under a path prefix (`/prefix/x` → `/x`), as
 * nginx's `location /prefix/ { proxy_pass http://backend/; }` does. Streams both ways.
 */
import { createServer, request, type Server } from "node:http";

export async function startPrefixProxy(targetUrl: string, prefix: string): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(targetUrl);
  const server: Server = createServer((incoming, outgoing) => {
    const path = incoming.url ?? "/";
    if (!path.startsWith(`${prefix}/`)) return void outgoing.writeHead(404).end();
    const upstream = request(
      { host: target.hostname, port: target.port, method: incoming.method, path: path.slice(prefix.length), headers: incoming.headers },
      (reply) => {
        outgoing.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(outgoing);
      },
    );
    upstream.on("error", () => outgoing.destroy());
    outgoing.on("close", () => upstream.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("proxy has no address");
  return {
    url: `http://127.0.0.1:${address.port}${prefix}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
