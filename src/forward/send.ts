/*
 * Sends one delivery with node:http(s), which, unlike fetch, keeps the header list
 * exactly as given (case, order and duplicates), so signatures still verify.
 */
import http from "node:http";
import https from "node:https";
import type { Delivery } from "./delivery.js";
import type { AttemptOutcome } from "./retry-policy.js";

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 4 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 4 }),
};

export function sendDelivery(delivery: Delivery, timeoutMs: number, signal?: AbortSignal): Promise<AttemptOutcome> {
  const secure = delivery.url.protocol === "https:";
  const transport = secure ? https : http;
  return new Promise((resolve) => {
    const request = transport.request(
      {
        protocol: delivery.url.protocol,
        hostname: delivery.url.hostname.replace(/^\[|\]$/g, ""),
        port: delivery.url.port,
        path: delivery.path,
        method: delivery.method,
        headers: delivery.headers,
        agent: secure ? agents.https : agents.http,
        timeout: timeoutMs,
        signal,
      },
      (response) => {
        // The target's answer is only its status; drain the body so the socket is reused.
        response.resume();
        response.on("end", () => {
          const retryAfter = response.headers["retry-after"];
          resolve({ kind: "response", status: response.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) });
        });
        response.on("error", (error) => resolve({ kind: "error", message: error.message }));
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", (error: NodeJS.ErrnoException) => resolve({ kind: "error", message: error.code ?? error.message }));
    request.end(delivery.body);
  });
}
