/*
 * The small part of autocannon's API the benchmark uses. autocannon ships no types and
 * @types/autocannon follows v7, so these few lines replace a dependency.
 */
declare module "autocannon" {
  import type { EventEmitter } from "node:events";

  namespace autocannon {
    interface Options {
      url: string;
      method?: "GET" | "POST" | "PUT";
      headers?: Record<string, string>;
      body?: string | Buffer;
      connections?: number;
      /** Seconds. */
      duration?: number;
      /** Send exactly this many requests, then stop (overrides duration). */
      amount?: number;
      /** Seconds before a request counts as timed out (and as an error). */
      timeout?: number;
    }

    interface Result {
      duration: number;
      /** Connection errors and timeouts. */
      errors: number;
      timeouts: number;
      non2xx: number;
      "2xx": number;
      requests: { average: number; total: number; sent: number };
    }

    interface Instance extends EventEmitter {
      stop(): void;
      /** Emitted for every response; responseTime is in milliseconds (from hrtime). */
      on(event: "response", listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void): this;
    }
  }

  function autocannon(options: autocannon.Options, callback: (error: Error | null, result: autocannon.Result) => void): autocannon.Instance;

  export = autocannon;
}
