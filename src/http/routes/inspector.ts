/*
 * The web inspector: static files from the package's web/ folder, at `/` (index.html)
 * and `/inspector/<file>`. The files are read once, at registration, so a request can
 * only ever name one of them (no paths, no traversal). The pages talk to the JSON API
 * with the token from the tab's session storage, never through the URL.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { TailhookError } from "../../core/errors.js";

// src/http/routes and dist/http/routes are both three folders below the package root.
const WEB_FOLDER = fileURLToPath(new URL("../../../web/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

// Everything from our own origin only: no inline script or style, no framing, no foreign fetches.
export const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Revalidate each load, so an upgraded server never runs old scripts against a new API.
  "cache-control": "no-cache",
};

export interface WebFile {
  type: string;
  bytes: Buffer;
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot);
}

/** The servable files by name; empty when the package has no web/ folder. */
export function loadWebFiles(folder = WEB_FOLDER): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return files;
  }
  for (const name of names) {
    const type = CONTENT_TYPES[extensionOf(name)];
    if (type && /^[a-z0-9-]+\.[a-z]+$/.test(name)) files.set(name, { type, bytes: readFileSync(folder + name) });
  }
  return files;
}

export function registerInspectorRoutes(app: FastifyInstance, files = loadWebFiles()): void {
  function send(reply: FastifyReply, name: string) {
    const file = files.get(name);
    if (!file) throw new TailhookError("not_found", "no such file");
    return reply.headers({ ...SECURITY_HEADERS, "content-type": file.type }).send(file.bytes);
  }
  app.get("/", async (_request, reply) => send(reply, "index.html"));
  app.get("/inspector/:file", async (request, reply) => send(reply, (request.params as { file: string }).file));
}
