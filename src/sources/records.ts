/*
 * Where sources live: the store's generic records table (both backends have it),
 * one kind for definitions (with credentials; only the server reads them), one for
 * the runner's state, one for "run now" requests. The API writes definitions and
 * requests; only the runner writes state, so processes never overwrite each other.
 */
import type { GeneralStreams } from "../storage/streams.js";
import type { SourceDefinition, SourceState } from "./types.js";

const DEFINITION_KIND = "source";
const STATE_KIND = "source-state";
const RUN_REQUEST_KIND = "source-run";

type RecordTable = Pick<GeneralStreams, "listRecords" | "putRecord">;

export class SourceRecords {
  constructor(private readonly records: RecordTable) {}

  async definitions(): Promise<SourceDefinition[]> {
    return (await this.records.listRecords(DEFINITION_KIND)).map((record) => JSON.parse(record.value) as SourceDefinition);
  }

  async definitionsOf(inboxId: string): Promise<SourceDefinition[]> {
    return (await this.definitions()).filter((source) => source.inboxId === inboxId);
  }

  async states(): Promise<Map<string, SourceState>> {
    const records = await this.records.listRecords(STATE_KIND);
    return new Map(records.map((record) => [record.key, JSON.parse(record.value) as SourceState]));
  }

  putDefinition(source: SourceDefinition): Promise<void> {
    return this.records.putRecord(DEFINITION_KIND, source.id, JSON.stringify(source));
  }

  putState(id: string, state: SourceState): Promise<void> {
    return this.records.putRecord(STATE_KIND, id, JSON.stringify(state));
  }

  async remove(id: string): Promise<void> {
    await this.records.putRecord(DEFINITION_KIND, id, null);
    await this.records.putRecord(RUN_REQUEST_KIND, id, null);
    await this.records.putRecord(STATE_KIND, id, null);
  }

  removeState(id: string): Promise<void> {
    return this.records.putRecord(STATE_KIND, id, null);
  }

  requestRun(id: string, now = Date.now()): Promise<void> {
    return this.records.putRecord(RUN_REQUEST_KIND, id, String(now));
  }

  async runRequests(): Promise<string[]> {
    return (await this.records.listRecords(RUN_REQUEST_KIND)).map((record) => record.key);
  }

  clearRunRequest(id: string): Promise<void> {
    return this.records.putRecord(RUN_REQUEST_KIND, id, null);
  }
}
