/*
 * A consumer of a state stream as an application writes one, run as a child process by
 * test/offline-consumer.test.ts: it keeps its state (@durable-streams/state's
 * MaterializedState) and its offset in a file, resumes from that offset when started
 * again, and lets the client library re-sync it (onGone "snapshot") when the offset is
 * no longer there. After each message it saves the file and prints one JSON line.
 *
 * Usage: node state-follower.mjs <server> <token> <stream> <state file>
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { MaterializedState } from "@durable-streams/state";
import { TailhookClient } from "../../dist/index.js";

const [server, token, stream, file] = process.argv.slice(2);
const saved = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { offset: "-1", changes: [] };
let state = new MaterializedState();
for (const change of saved.changes) state.apply(change);

function save(offset) {
  const changes = [];
  for (const type of state.types)
    for (const [key, value] of state.getType(type)) changes.push({ type, key, value, headers: { operation: "insert" } });
  writeFileSync(`${file}.tmp`, JSON.stringify({ offset, changes }));
  renameSync(`${file}.tmp`, file);
}

const client = new TailhookClient({ server, token });
const losses = [];
for await (const item of client.tailStream(stream, { from: saved.offset, onGone: "snapshot", onLoss: (notice) => losses.push(notice) })) {
  if (item.kind === "reset") state = new MaterializedState();
  else if (item.kind === "snapshot" || item.kind === "message") state.apply(item.message);
  // Inside a key frame there is no offset to resume from: only its end (and each delta) has one.
  if (item.kind === "message" || item.kind === "snapshot-end") save(item.offset);
  const offset = item.kind === "message" || item.kind === "snapshot-end" || item.kind === "reset" ? item.offset : undefined;
  console.log(JSON.stringify({ kind: item.kind, offset, losses: losses.length }));
}
