/*
 * The store as the metrics see it: the same Store, with each call's failure counted
 * by operation, each event append timed (the caller's view of a commit: group-commit
 * wait, transaction and fsync) and its outcome counted (bytes in, duplicates). A
 * Proxy, so optional capabilities stay exactly as present or absent as they were;
 * the backends need no code for it beyond the optional observe() hook.
 */
import type { CapturedRequest } from "../core/types.js";
import type { AppendEventResult, Store } from "../storage/store.js";
import type { Metrics } from "./metrics.js";

type AnyFunction = (...args: unknown[]) => unknown;

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === "function";
}

export function instrumentStore(store: Store, metrics: Metrics): Store {
  store.observe?.({
    committedBatch: (operations) => metrics.observeBatch(operations),
    pruned: (rows) => metrics.countRetentionRemovals(rows),
    compacted: (messages) => metrics.countCompactionRemovals(messages),
  });
  // The inbox of a stream, learnt from lookups, for per-inbox labels (ingest looks the inbox up first).
  const inboxOfStream = new Map<number, string>();
  /** Wrapped methods by name, rewrapped when the store's own method is replaced. */
  const cache = new Map<PropertyKey, { method: AnyFunction; wrapped: AnyFunction }>();

  function noteInbox(result: unknown): void {
    const inbox = result as { id?: unknown; streamId?: unknown } | undefined;
    if (metrics.perInbox && typeof inbox?.id === "string" && typeof inbox.streamId === "number")
      inboxOfStream.set(inbox.streamId, inbox.id);
  }

  function countAppend(streamId: number, request: CapturedRequest, result: AppendEventResult): void {
    const inboxId = inboxOfStream.get(streamId) ?? "";
    if (result.status === "appended") metrics.countIngested(inboxId, request.body.length);
    else if (result.status === "duplicate") metrics.countDuplicate(inboxId);
  }

  function wrap(name: string, method: AnyFunction): AnyFunction {
    return (...args: unknown[]) => {
      const started = process.hrtime.bigint();
      let result: unknown;
      try {
        result = method.apply(store, args);
      } catch (error) {
        metrics.countStoreError(name);
        throw error;
      }
      if (!isPromise(result)) return result;
      return result.then(
        (value) => {
          if (name === "getInbox" || name === "createInbox") noteInbox(value);
          if (name === "appendEvent") {
            metrics.observeCommit(Number(process.hrtime.bigint() - started) / 1e9);
            countAppend(args[0] as number, args[1] as CapturedRequest, value as AppendEventResult);
          }
          return value;
        },
        (error: unknown) => {
          metrics.countStoreError(name);
          throw error;
        },
      );
    };
  }

  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function" || typeof property !== "string") return value;
      const cached = cache.get(property);
      if (cached?.method === value) return cached.wrapped;
      const wrapped = wrap(property, value as AnyFunction);
      cache.set(property, { method: value as AnyFunction, wrapped });
      return wrapped;
    },
  });
}
