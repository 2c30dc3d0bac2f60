/* Counts calls of a real store's read methods; the store itself still answers them. */
import type { Store } from "../../dist/storage/store.js";

export function countReads(store: Store) {
  const counts = { readMessages: 0, getStreamById: 0 };
  const { readMessages, getStreamById } = store;
  store.readMessages = (...args) => {
    counts.readMessages++;
    return readMessages.apply(store, args);
  };
  store.getStreamById = (...args) => {
    counts.getStreamById++;
    return getStreamById.apply(store, args);
  };
  return {
    counts,
    restore: () => Object.assign(store, { readMessages, getStreamById }),
  };
}
