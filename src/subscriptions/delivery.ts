/*
 * One webhook POST. Built on node:http rather than fetch for two reasons: redirects are
 * never followed (a 302 to http://169.254.169.254 would undo the URL check), and every
 * address a host name resolves to is checked before we connect (a public-looking name
 * can resolve to a private address). The reply is read up to a small limit, because we
 * only look for { "done": true } in it.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { isPublicAddress } from "./webhook-url.js";

export type PostOutcome = { kind: "response"; status: number; body: string } | { kind: "error"; message: string };

export interface PostOptions {
  headers: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /** The development exception (localhost, 127.0.0.x): loopback addresses are allowed, nothing else private. */
  loopbackAllowed: boolean;
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
      lookup: guardedLookup(options.loopbackAllowed),
      signal: options.signal,
      agent: false,
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

function guardedLookup(loopbackAllowed: boolean): LookupFunction {
  const lookup = (hostname: string, options: { all?: boolean; family?: number | string }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true } as { all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error);
      const refused = addresses.find((entry) => !isAllowedAddress(entry.address, loopbackAllowed));
      if (refused || addresses.length === 0) {
        const blocked = Object.assign(new Error(`${hostname} resolves to a non-public address`), { code: "EWEBHOOKBLOCKED" });
        return callback(blocked);
      }
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  return lookup as unknown as LookupFunction;
}

function isAllowedAddress(address: string, loopbackAllowed: boolean): boolean {
  if (isPublicAddress(address)) return true;
  return loopbackAllowed && (/^127\./.test(address) || address === "::1" || address === "::ffff:127.0.0.1");
}
