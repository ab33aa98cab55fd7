import type { Database } from 'better-sqlite3';

/**
 * The single-node store's schema. Records are kept whole as JSON in `body`; the columns beside
 * it exist to filter and to compare-and-swap (`version`). `version` comes from one counter for
 * the whole file (`meta.revision`), so a version is never reused — not even by an op record
 * deleted and created again — and compares like an etcd mod revision.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE IF NOT EXISTS resources (
  type       TEXT NOT NULL,
  id         TEXT NOT NULL,
  version    INTEGER NOT NULL,
  status     TEXT NOT NULL,
  project_id TEXT NOT NULL,
  cluster    TEXT NOT NULL,
  name       TEXT,
  volume_id  TEXT,
  body       TEXT NOT NULL,
  PRIMARY KEY (type, id)
);
CREATE INDEX IF NOT EXISTS resources_by_volume ON resources (volume_id) WHERE volume_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS resources_by_status ON resources (type, status);
CREATE INDEX IF NOT EXISTS resources_by_project ON resources (type, project_id);
CREATE TABLE IF NOT EXISTS ops (
  type              TEXT NOT NULL,
  id                TEXT NOT NULL,
  version           INTEGER NOT NULL,
  cluster           TEXT NOT NULL,
  owner_host        TEXT,
  owner_incarnation TEXT,
  published_at      INTEGER,
  created_at        INTEGER NOT NULL,
  body              TEXT NOT NULL,
  PRIMARY KEY (type, id)
);
CREATE INDEX IF NOT EXISTS ops_by_cluster ON ops (cluster);
CREATE INDEX IF NOT EXISTS ops_by_owner ON ops (owner_host);
`;

/** Schema version in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 1;

/**
 * Opens the file the way the store needs it: WAL (readers never block the writer), a busy
 * timeout (a second process waits for the write lock instead of failing), full fsync at commit
 * (the state of record survives power loss), and the schema.
 */
export function prepareDatabase(db: Database, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`the state file has schema version ${version}; this hearth knows up to ${SCHEMA_VERSION}`);
  }
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
