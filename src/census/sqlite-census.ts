import Database, { type Database as Db } from 'better-sqlite3';
import { BackendUnavailableError } from '../errors.js';
import type { Census, CensusSnapshot } from './census.js';

/**
 * The census on a single node: the state file keeps its own counts. Triggers on the state
 * store's `resources` table add and subtract, inside the very transactions that write the
 * records, so the counts are exact and reading them is one small query; nothing scans the
 * records after the first start (which counts them once, when it creates the triggers). Ops in
 * flight are few: their oldest per kind is one grouped query.
 *
 * Failure semantics: a read that meets the writer's lock waits up to `busyTimeoutMs`, then
 * fails with a retryable `BackendUnavailableError` (the scrape shows nothing this time).
 */
export class SqliteCensus implements Census {
  private closed = false;

  private constructor(private readonly db: Db) {}

  /** Opens a connection to the state file and installs the counts (once). */
  static open(path: string, busyTimeoutMs = 5_000): SqliteCensus {
    try {
      const db = new Database(path);
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      install(db);
      return new SqliteCensus(db);
    } catch (err) {
      throw new BackendUnavailableError('sqlite', `opening the census of ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async start(): Promise<void> {
    // The counts are kept by the store's own writes: nothing to follow.
  }

  async snapshot(): Promise<CensusSnapshot> {
    if (this.closed) throw new BackendUnavailableError('sqlite', 'the census is closed');
    try {
      const resources = this.db.prepare('SELECT type, status, n AS count FROM resource_counts').all() as { type: string; status: string; count: number }[];
      const operations = this.db
        .prepare("SELECT cluster, json_extract(body, '$.kind') AS kind, COUNT(*) AS count, MIN(created_at) AS oldestCreatedAtMs FROM ops GROUP BY cluster, kind")
        .all() as { cluster: string; kind: string; count: number; oldestCreatedAtMs: number }[];
      return { resources, operations };
    } catch (err) {
      throw new BackendUnavailableError('sqlite', `reading the census: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

const TRIGGERS = `
CREATE TRIGGER IF NOT EXISTS resource_counts_insert AFTER INSERT ON resources BEGIN
  INSERT INTO resource_counts (type, status, n) VALUES (NEW.type, NEW.status, 1)
    ON CONFLICT (type, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS resource_counts_delete AFTER DELETE ON resources BEGIN
  UPDATE resource_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
END;
CREATE TRIGGER IF NOT EXISTS resource_counts_update AFTER UPDATE OF status ON resources WHEN OLD.status IS NOT NEW.status BEGIN
  UPDATE resource_counts SET n = n - 1 WHERE type = OLD.type AND status = OLD.status;
  INSERT INTO resource_counts (type, status, n) VALUES (NEW.type, NEW.status, 1)
    ON CONFLICT (type, status) DO UPDATE SET n = n + 1;
END;
`;

/** Creates the counts table (counting the records once) and its triggers, in one write transaction. */
function install(db: Db): void {
  db.transaction(() => {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'resource_counts'").get();
    if (!exists) {
      db.exec('CREATE TABLE resource_counts (type TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (type, status))');
      db.exec('INSERT INTO resource_counts (type, status, n) SELECT type, status, COUNT(*) FROM resources GROUP BY type, status');
    }
    db.exec(TRIGGERS);
  }).immediate();
}
