/*
 * Process-wide error policy, owned by whoever runs the server, not by storage: an
 * uncaught error the store recognises as a known harmless client-library bug is logged
 * and let pass; anything else ends the process as Node would (report, exit 1), unless
 * another handler of the embedding program is there to decide.
 */
import type { Logger } from "pino";
import type { Store } from "./storage/store.js";

/** Installs the guard when the store knows such errors; returns the remover. */
export function guardProcessErrors(store: Pick<Store, "isIgnorableProcessError">, logger: Pick<Logger, "warn">): () => void {
  if (!store.isIgnorableProcessError) return () => undefined;
  const handler = (error: Error): void => {
    if (store.isIgnorableProcessError?.(error)) {
      logger.warn({ err: error }, "ignored a known harmless error of the database client library");
      return;
    }
    if (process.listenerCount("uncaughtException") > 1) return;
    console.error(error);
    process.exit(1);
  };
  process.on("uncaughtException", handler);
  return () => process.off("uncaughtException", handler);
}
