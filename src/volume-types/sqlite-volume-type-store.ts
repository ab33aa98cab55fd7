import Database, { type Database as Db } from 'better-sqlite3';
import { BackendUnavailableError } from '../errors.js';
import {
  applySpecChange,
  byName,
  decodeVolumeType,
  encodeVolumeType,
  type SpecChange,
  type TypeWriteResult,
  type VolumeType,
  type VolumeTypeStore,
} from './volume-type-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS volume_types (
  id   TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL
);
`;

/**
 * Volume types on a single node: a table in the state file (`state.sqlite`), on a connection of
 * its own. The name is a UNIQUE column, so two creates of one name cannot both win; a change of
 * extra specs is one transaction.
 *
 * Failure semantics: a write waits up to `busyTimeoutMs` for the file's write lock, then fails
 * with a retryable `BackendUnavailableError`; nothing is half-written.
 */
export class SqliteVolumeTypeStore implements VolumeTypeStore {
  private closed = false;

  private constructor(private readonly db: Db) {}

  /** Opens a connection to the state file and creates the table if needed. */
  static open(path: string, busyTimeoutMs = 5_000): SqliteVolumeTypeStore {
    try {
      const db = new Database(path);
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      db.exec(SCHEMA);
      return new SqliteVolumeTypeStore(db);
    } catch (err) {
      throw new BackendUnavailableError('sqlite', `opening volume types in ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async create(type: VolumeType): Promise<TypeWriteResult> {
    const changes = this.run(() => this.db.prepare('INSERT OR IGNORE INTO volume_types (id, name, body) VALUES (?, ?, ?)').run(type.id, type.name, encodeVolumeType(type)).changes);
    return changes > 0 ? { ok: true, type } : { ok: false, reason: 'name-taken' };
  }

  async get(id: string): Promise<VolumeType | undefined> {
    const row = this.run(() => this.db.prepare('SELECT body FROM volume_types WHERE id = ?').get(id) as { body: string } | undefined);
    return row && decodeVolumeType(row.body);
  }

  async getByName(name: string): Promise<VolumeType | undefined> {
    const row = this.run(() => this.db.prepare('SELECT body FROM volume_types WHERE name = ?').get(name) as { body: string } | undefined);
    return row && decodeVolumeType(row.body);
  }

  async list(): Promise<VolumeType[]> {
    const rows = this.run(() => this.db.prepare('SELECT body FROM volume_types').all() as { body: string }[]);
    return byName(rows.map((r) => decodeVolumeType(r.body)).filter((t): t is VolumeType => t !== undefined));
  }

  async changeSpecs(id: string, change: SpecChange): Promise<TypeWriteResult> {
    return this.run(() =>
      this.db.transaction((): TypeWriteResult => {
        const row = this.db.prepare('SELECT body FROM volume_types WHERE id = ?').get(id) as { body: string } | undefined;
        const current = row && decodeVolumeType(row.body);
        if (!current) return { ok: false, reason: 'not-found' };
        const next: VolumeType = { ...current, extraSpecs: applySpecChange(current.extraSpecs, change) };
        this.db.prepare('UPDATE volume_types SET body = ? WHERE id = ?').run(encodeVolumeType(next), id);
        return { ok: true, type: next };
      }).immediate(),
    );
  }

  async delete(id: string): Promise<boolean> {
    return this.run(() => this.db.prepare('DELETE FROM volume_types WHERE id = ?').run(id).changes > 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private run<T>(fn: () => T): T {
    if (this.closed) throw new BackendUnavailableError('sqlite', 'the volume type store is closed');
    try {
      return fn();
    } catch (err) {
      throw new BackendUnavailableError('sqlite', `volume types: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}
