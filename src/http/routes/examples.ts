/*
 * The example apps that ship with the package, at /examples/<app>/ (docs/key-frames.md,
 * "WebSocket"): static files read once at registration, under the inspector's strict
 * policy (scripts and connections to this origin only, no inline script).
 */
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { TailhookError } from "../../core/errors.js";
import { loadWebFiles, SECURITY_HEADERS } from "./inspector.js";

// src/http/routes and dist/http/routes are both three folders below the package root.
const STATE_APP_FOLDER = fileURLToPath(new URL("../../../examples/state-app/", import.meta.url));

export function registerExampleRoutes(app: FastifyInstance, files = loadWebFiles(STATE_APP_FOLDER)): void {
  function send(reply: FastifyReply, name: string) {
    const file = files.get(name);
    if (!file) throw new TailhookError("not_found", "no such file");
    return reply.headers({ ...SECURITY_HEADERS, "content-type": file.type }).send(file.bytes);
  }
  // Without the trailing slash, the page's relative script and style URLs would miss the folder.
  app.get("/examples/state-app", async (_request, reply) => reply.redirect("/examples/state-app/", 301));
  app.get("/examples/state-app/", async (_request, reply) => send(reply, "index.html"));
  app.get("/examples/state-app/:file", async (request, reply) => send(reply, (request.params as { file: string }).file));
}
