/*
 * Closed-loop ingest load with autocannon, in this process: N connections each POST
 * the same body back to back. Latencies are taken from every response (hrtime, ms)
 * rather than from autocannon's whole-millisecond histogram.
 */
import autocannon from "autocannon";
import { summarize } from "./stats.js";

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** Every 2xx response's latency, ms (to merge the latencies of loads run side by side). */
  latencies: number[];
}

export interface LoadOptions {
  url: string;
  body: string;
  connections: number;
  seconds: number;
  /** More request headers (e.g. a signature). */
  headers?: Record<string, string>;
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: "POST",
        headers: { "content-type": "application/json", ...options.headers },
        body: options.body,
        connections: options.connections,
        duration: options.seconds,
        timeout: 10,
      },
      (error, result) => {
        if (error) return reject(error);
        const { p50, p99 } = summarize(latencies);
        resolve({ requestsPerSecond: result.requests.average, p50, p99, non2xx: result.non2xx, errors: result.errors, latencies });
      },
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
}
