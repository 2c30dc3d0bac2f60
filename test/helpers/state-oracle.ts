/*
 * The key-frame oracle's parts (test/key-frame-oracle.test.ts): random State Protocol
 * messages (fast-check), the plain model of the state they make, @durable-streams/state's
 * MaterializedState fed a message list, and the readers of a state stream over HTTP.
 */
import { MaterializedState, type ChangeEvent } from "@durable-streams/state";
import fc from "fast-check";
import { expect } from "vitest";

export type Message = {
  type?: string;
  key?: string;
  value?: unknown;
  headers: { operation?: string; control?: string; offset?: string };
};

/** A state as a flat map: JSON [type, key] to value, so maps compare with toEqual. */
export type State = Map<string, unknown>;

const types = fc.constantFrom("user", "ü-type", "order");
// A small key set, so that updates, deletes and re-inserts of the same key are common.
const keys = fc.constantFrom("1", "2", "10", "a", "é", "😀");
const values = fc.jsonValue({ maxDepth: 2 });

const change = (operation: "insert" | "update" | "upsert") =>
  fc
    .record({ type: types, key: keys, value: values })
    .map(({ type, key, value }): Message => ({ type, key, value, headers: { operation } }));

export const message: fc.Arbitrary<Message> = fc.oneof(
  { arbitrary: change("insert"), weight: 12 },
  { arbitrary: change("update"), weight: 9 },
  { arbitrary: change("upsert"), weight: 9 },
  {
    arbitrary: fc.record({ type: types, key: keys }).map(({ type, key }): Message => ({ type, key, headers: { operation: "delete" } })),
    weight: 10,
  },
  // A reset clears the state before it; snapshot-start and snapshot-end in the log change nothing.
  { arbitrary: fc.constant<Message>({ headers: { control: "reset" } }), weight: 1 },
  {
    arbitrary: fc.constantFrom<Message>({ headers: { control: "snapshot-start", offset: "x" } }, { headers: { control: "snapshot-end" } }),
    weight: 1,
  },
);

/** Appends: each batch is one POST, so one transaction. */
export const batches = fc.array(fc.array(message, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 14 });

/** The plain model: a map, a reset empties it. Values go through JSON as they do on the wire. */
export function model(messages: Message[]): State {
  const state: State = new Map();
  for (const { type, key, value, headers } of messages) {
    const id = JSON.stringify([type, key]);
    if (headers.control === "reset") state.clear();
    else if (headers.operation === "delete") state.delete(id);
    else if (headers.operation !== undefined) state.set(id, JSON.parse(JSON.stringify(value)) as unknown);
  }
  return state;
}

/** MaterializedState fed these messages in order; a reset clears it, as StreamDB does. */
export function materialize(messages: Message[]): State {
  const state = new MaterializedState();
  for (const message of messages) {
    if (message.headers.control === "reset") state.clear();
    else if (message.headers.operation !== undefined) state.apply(message as ChangeEvent);
  }
  const flat: State = new Map();
  for (const type of state.types) for (const [key, value] of state.getType(type)) flat.set(JSON.stringify([type, key]), value);
  return flat;
}

export function seqOf(offset: string): number {
  return Number(offset.split("_")[1]);
}

export interface Snapshot {
  asOf: string;
  inserts: Message[];
  pages: number;
}

/** Checks a whole snapshot's framing (docs/key-frames.md, wire format) and returns its inserts. */
export function checkSnapshot(pages: Message[][], lastNextOffset: string): Snapshot {
  const all = pages.flat();
  const start = all[0]!.headers;
  expect(start.control).toBe("snapshot-start");
  expect(all.at(-1)!.headers).toEqual({ control: "snapshot-end", offset: start.offset });
  expect(lastNextOffset).toBe(start.offset);
  const inserts = all.slice(1, -1);
  for (const insert of inserts) expect(insert.headers).toEqual({ operation: "insert" });
  const order = inserts.map((insert) => Buffer.from(JSON.stringify([insert.type, insert.key])));
  expect([...order].sort(Buffer.compare)).toEqual(order);
  return { asOf: start.offset!, inserts, pages: pages.length };
}
