/*
 * What a store tells an observer (the metrics, src/metrics) about work callers do not
 * see: how many operations each group-commit transaction carried, and how many rows
 * a retention pass removed, and how many messages compaction removed. Optional (Store.observe); a store without it reports nothing.
 */
export interface StoreObserver {
  committedBatch?(operations: number): void;
  pruned?(rows: number): void;
  /** Messages a compaction pass removed (superseded changes, old tombstones). */
  compacted?(messages: number): void;
}

/** The observers a store was given; each call reaches all of them. */
export class StoreObservers implements Required<StoreObserver> {
  private readonly observers: StoreObserver[] = [];

  add(observer: StoreObserver): void {
    this.observers.push(observer);
  }

  committedBatch(operations: number): void {
    for (const observer of this.observers) observer.committedBatch?.(operations);
  }

  pruned(rows: number): void {
    if (rows > 0) for (const observer of this.observers) observer.pruned?.(rows);
  }

  compacted(messages: number): void {
    if (messages > 0) for (const observer of this.observers) observer.compacted?.(messages);
  }
}
