import Database, { type Database as Db } from 'better-sqlite3';
import { BackendUnavailableError } from '../errors.js';
import { decodeMessage, type MessageStore, type UserMessage } from './message-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id         TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at);
`;

/**
 * User messages on a single node: a table in the state file (`state.sqlite`), on a connection
 * of its own, so the state store's hot path is untouched. The file is in WAL mode (the state
 * store set it), so this connection's reads never block its writes.
 *
 * Failure semantics: a write waits up to `busyTimeoutMs` for the file's write lock, then fails
 * with a retryable `BackendUnavailableError`; nothing is half-written.
 */
export class SqliteMessageStore implements MessageStore {
  private closed = false;

  private constructor(private readonly db: Db) {}

  /** Opens a connection to the state file and creates the table if needed. */
  static open(path: string, busyTimeoutMs = 5_000): SqliteMessageStore {
    try {
      const db = new Database(path);
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      db.exec(SCHEMA);
      return new SqliteMessageStore(db);
    } catch (err) {
      throw new BackendUnavailableError('sqlite', `opening user messages in ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async create(m: UserMessage): Promise<void> {
    this.run(() => this.db.prepare('INSERT INTO messages (id, project_id, expires_at, body) VALUES (?, ?, ?, ?)').run(m.id, m.projectId, m.expiresAtMs, JSON.stringify(m)));
  }

  async get(id: string, nowMs: number): Promise<UserMessage | undefined> {
    const row = this.run(() => this.db.prepare('SELECT body FROM messages WHERE id = ? AND expires_at > ?').get(id, nowMs) as { body: string } | undefined);
    return row && decodeMessage(row.body);
  }

  async list(projectId: string | undefined, nowMs: number): Promise<UserMessage[]> {
    const rows = this.run(() =>
      (projectId === undefined
        ? this.db.prepare('SELECT body FROM messages WHERE expires_at > ?').all(nowMs)
        : this.db.prepare('SELECT body FROM messages WHERE expires_at > ? AND project_id = ?').all(nowMs, projectId)) as { body: string }[],
    );
    return rows.map((r) => decodeMessage(r.body)).filter((m): m is UserMessage => m !== undefined);
  }

  async delete(id: string): Promise<boolean> {
    return this.run(() => this.db.prepare('DELETE FROM messages WHERE id = ?').run(id).changes > 0);
  }

  async deleteExpired(nowMs: number): Promise<number> {
    return this.run(() => this.db.prepare('DELETE FROM messages WHERE expires_at <= ?').run(nowMs).changes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private run<T>(fn: () => T): T {
    if (this.closed) throw new BackendUnavailableError('sqlite', 'the user message store is closed');
    try {
      return fn();
    } catch (err) {
      throw new BackendUnavailableError('sqlite', `user messages: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}
