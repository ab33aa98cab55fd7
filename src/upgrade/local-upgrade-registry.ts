import { EventQueue } from '../concurrency/event-queue.js';
import type { LiveProcess, PresenceRecord, SchemaState } from './records.js';
import type { AnnounceResult, MigrationBatch, Presence, SchemaWriteResult, UpgradeEvent, UpgradeRegistry, UpgradeSnapshot } from './registry.js';

/**
 * The UpgradeRegistry of a single node: one process, and the record schema its SQLite file was
 * migrated to when the store opened (a single node has no earlier release running beside it, so
 * it migrates on start, after a backup; see `state/sqlite-schema.ts`). Nothing is raised here:
 * `writeSchema` refuses.
 */
export class LocalUpgradeRegistry implements UpgradeRegistry {
  readonly distributed = false;
  private readonly processes = new Map<string, LiveProcess>();
  private readonly listeners = new Set<(event: UpgradeEvent) => void>();
  private readonly schemaState: SchemaState;

  /** `schemaVersion`: the schema of the store's records. */
  constructor(schemaVersion: number) {
    this.schemaState = { version: schemaVersion, finalizedAtMs: null, finalizedBy: null, migration: null, revision: '0' };
  }

  async schema(): Promise<SchemaState> {
    return this.schemaState;
  }

  async snapshot(): Promise<UpgradeSnapshot> {
    return { processes: [...this.processes.values()], schema: this.schemaState, revision: '0' };
  }

  async announce(record: PresenceRecord): Promise<AnnounceResult> {
    const id = `${record.host}/${record.pid}`;
    const process: LiveProcess = { ...record, id, since: '0' };
    const gone = new AbortController();
    this.processes.set(id, process);
    this.emit({ type: 'process-joined', process, revision: '0' });
    const presence: Presence = {
      id,
      signal: gone.signal,
      close: async () => {
        if (gone.signal.aborted) return;
        gone.abort();
        this.processes.delete(id);
        this.emit({ type: 'process-left', process, revision: '0' });
      },
    };
    return { ok: true, presence };
  }

  watch(signal: AbortSignal): AsyncIterable<UpgradeEvent> {
    const queue = new EventQueue<UpgradeEvent>(signal);
    const listener = (event: UpgradeEvent): void => queue.push(event);
    this.listeners.add(listener);
    signal.addEventListener('abort', () => this.listeners.delete(listener), { once: true });
    queue.push({ type: 'synced', snapshot: { processes: [...this.processes.values()], schema: this.schemaState, revision: '0' } });
    return queue;
  }

  async writeSchema(): Promise<SchemaWriteResult> {
    return { ok: false, reason: 'schema' };
  }

  async claimMigration(): Promise<boolean> {
    return false;
  }

  async releaseMigration(): Promise<void> {}

  async migrateBatch(): Promise<MigrationBatch> {
    return { cursor: null, migrated: 0, raced: 0, unreadable: [] };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private emit(event: UpgradeEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
