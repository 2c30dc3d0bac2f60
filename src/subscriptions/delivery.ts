/*
 * One webhook POST. Built on node:http rather than fetch for two reasons: redirects are
 * never followed (a 302 to http://169.254.169.254 would undo the URL check), and every
 * address a host name resolves to is checked before we connect (a public-looking name
 * can resolve to a private address). The socket's peer address is checked again once
 * connected, before the request is written, whatever path led there. The reply is read
 * up to a small limit, because we only look for { "done": true } in it.
 */
import type { LookupAddress } from "node:dns";
import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction, Socket } from "node:net";
import { isLoopbackAddress, isPublicAddress } from "./webhook-url.js";

/** Resolves a webhook host to every address it has (dns.lookup by default; tests inject one). */
export type WebhookResolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: WebhookResolver = (hostname) => dnsLookup(hostname, { all: true });

export type PostOutcome = { kind: "response"; status: number; body: string } | { kind: "error"; message: string };

export interface PostOptions {
  headers: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /** The development exception (localhost, 127.0.0.x): loopback addresses are allowed, nothing else private. */
  loopbackAllowed: boolean;
  resolve?: WebhookResolver;
}

const MAX_REPLY_BYTES = 64 * 1024;

export function postJson(url: URL, body: string, options: PostOptions): Promise<PostOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const request = send(url, {
      method: "POST",
      headers: { ...options.headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
      lookup: guardedLookup(options.resolve ?? systemResolver, options.loopbackAllowed),
      signal: options.signal,
      agent: false,
    });
    // Registered before the request is flushed to the socket, so this runs first on connect.
    request.once("socket", (socket: Socket) => {
      socket.once("connect", () => {
        const peer = socket.remoteAddress;
        if (peer === undefined || !isAllowedAddress(peer, options.loopbackAllowed)) {
          socket.destroy(blockedError(`${url.hostname} connected to a non-public address`));
        }
      });
    });
    const timer = setTimeout(() => {
      request.destroy(new Error(`no reply within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    request.on("error", (error) => finish({ kind: "error", message: error.message }));
    request.on("response", (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_REPLY_BYTES) chunks.push(chunk);
        else response.destroy();
      });
      const done = () => finish({ kind: "response", status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      response.on("end", done);
      response.on("close", done);
      response.on("error", done);
    });
    request.end(body);
  });
}

/** Whether a 2xx reply says the receiver finished the wake on the spot. */
export function repliedDone(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === "object" && parsed !== null && (parsed as { done?: unknown }).done === true;
  } catch {
    return false;
  }
}

function blockedError(message: string): Error {
  return Object.assign(new Error(message), { code: "EWEBHOOKBLOCKED" });
}

/** A lookup for node:net that refuses the host if any address it resolves to is not allowed. */
function guardedLookup(resolve: WebhookResolver, loopbackAllowed: boolean): LookupFunction {
  const lookup = (hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    resolve(hostname).then(
      (addresses) => {
        const refused = addresses.find((entry) => !isAllowedAddress(entry.address, loopbackAllowed));
        if (refused || addresses.length === 0) return callback(blockedError(`${hostname} resolves to a non-public address`));
        if (options.all) return callback(null, addresses);
        return callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: unknown) => callback(error),
    );
  };
  return lookup as unknown as LookupFunction;
}

function isAllowedAddress(address: string, loopbackAllowed: boolean): boolean {
  if (isPublicAddress(address)) return true;
  return loopbackAllowed && isLoopbackAddress(address);
}
