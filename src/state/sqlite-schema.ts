import type { Database } from 'better-sqlite3';
import { formatRange, ProtocolMismatchError, type VersionRange } from '../protocol.js';
import { type RecordBody, RecordVersions } from './record-versions.js';

/**
 * The single-node store's schema. Records are kept whole as JSON in `body`; the columns beside
 * it exist to filter, to page listings from indexes (`created_at`, `name_key`: see
 * {@link nameKeyOf}) and to compare-and-swap (`version`). `version` comes from one counter for
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
  created_at INTEGER NOT NULL DEFAULT 0,
  name_key   TEXT NOT NULL DEFAULT '0',
  body       TEXT NOT NULL,
  PRIMARY KEY (type, id)
);
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

/**
 * The listing indexes (list-plan.ts): one per scope a listing filters by (all, project, status,
 * project and status), each in the orders served, so that a page is an index range with LIMIT.
 */
const LIST_INDEXES = `
DROP INDEX IF EXISTS resources_by_status;
DROP INDEX IF EXISTS resources_by_project;
CREATE INDEX IF NOT EXISTS resources_by_volume ON resources (volume_id) WHERE volume_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS resources_by_created ON resources (type, created_at, id);
CREATE INDEX IF NOT EXISTS resources_by_project_created ON resources (type, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS resources_by_status_created ON resources (type, status, created_at, id);
CREATE INDEX IF NOT EXISTS resources_by_project_status_created ON resources (type, project_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS resources_by_name ON resources (type, name_key, created_at, id);
CREATE INDEX IF NOT EXISTS resources_by_project_name ON resources (type, project_id, name_key, created_at, id);
`;

/**
 * Schema version in `PRAGMA user_version`. 2: the listing columns `created_at` and `name_key`
 * and their indexes (a file of version 1 gets them on open, filled from the bodies).
 */
export const SCHEMA_VERSION = 2;

/**
 * The `name_key` of a name: orders as the name's bytes with a missing name first, as SQL's
 * NULL sorts ascending — and as the etcd index orders it (list-plan.ts `nameKey`).
 */
export function nameKeyOf(name: string | null): string {
  return name === null ? '0' : `1${name}`;
}

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
    addListingColumns(db);
    db.exec(LIST_INDEXES);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Adds the listing columns to a file of schema version 1, filled from each record's body. */
function addListingColumns(db: Database): void {
  const columns = new Set((db.prepare('PRAGMA table_info(resources)').all() as { name: string }[]).map((c) => c.name));
  if (columns.has('created_at') && columns.has('name_key')) return;
  if (!columns.has('created_at')) db.exec('ALTER TABLE resources ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0');
  if (!columns.has('name_key')) db.exec("ALTER TABLE resources ADD COLUMN name_key TEXT NOT NULL DEFAULT '0'");
  // Every schema of the records so far keeps `created_at` and `name` at the top of the body.
  db.exec(`UPDATE resources SET created_at = COALESCE(json_extract(body, '$.created_at'), 0),
    name_key = CASE WHEN json_extract(body, '$.name') IS NULL THEN '0' ELSE '1' || json_extract(body, '$.name') END`);
}

/** The `meta` row that holds the schema of the records (`v` of every body). */
const RECORD_SCHEMA_KEY = 'schema';

/** What opening the file did to its records. */
export interface RecordSchemaOutcome {
  /** The record schema the file is at now (this build's newest). */
  readonly schema: number;
  /** Set when the records were migrated: from which schema, and the backup taken first. */
  readonly migrated?: { readonly from: number; readonly backup: string };
}

/**
 * Brings the records of the file to the newest schema this build reads, on start: a single
 * node has no other process to stay compatible with. When records must change, a consistent
 * copy of the whole file is written first (`VACUUM INTO <path>.schema-<from>-<time>.bak`, never
 * a file copy of a live WAL database), then every record is rewritten in one transaction, so the
 * file is either wholly migrated or untouched. A file written before records had versions
 * (hearth before 0.1.0) counts as schema 0: its records get `v: 1` first.
 *
 * @throws ProtocolMismatchError when the file's schema is newer than this build reads (a newer
 *   release migrated it: run that release, or restore the backup it took) or older than it can
 *   migrate.
 */
export function migrateRecordSchema(db: Database, path: string, reads: VersionRange, nowMs: number): RecordSchemaOutcome {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(RECORD_SCHEMA_KEY) as { value: number } | undefined;
  const count = (db.prepare('SELECT (SELECT COUNT(*) FROM resources) + (SELECT COUNT(*) FROM ops) AS n').get() as { n: number }).n;
  const from = row?.value ?? (count === 0 ? reads.max : 0);
  if (from > reads.max) {
    throw new ProtocolMismatchError(
      `the state file ${path} has record schema ${from}, written by a newer release of hearth; this build reads schemas ${formatRange(reads)}. Run a release that supports schema ${from}, or restore the backup the newer release took before it migrated (${path}.schema-*.bak).`,
    );
  }
  if (from !== 0 && from < reads.min) {
    throw new ProtocolMismatchError(`the state file ${path} has record schema ${from}; this build reads schemas ${formatRange(reads)}: run a release that reads ${from} first, so that it migrates the file`);
  }
  if (row !== undefined && from === reads.max) return { schema: from };
  if (count === 0) {
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(RECORD_SCHEMA_KEY, reads.max);
    return { schema: reads.max };
  }
  const backup = `${path}.schema-${from}-${nowMs}.bak`;
  db.prepare('VACUUM INTO ?').run(backup);
  const versions = new RecordVersions(reads, reads.max);
  db.transaction(() => {
    for (const table of ['resources', 'ops'] as const) {
      const rows = db.prepare(`SELECT type, id, body FROM ${table}`).all() as { type: string; id: string; body: string }[];
      const update = db.prepare(`UPDATE ${table} SET body = ? WHERE type = ? AND id = ?`);
      for (const r of rows) {
        const subject = `${table}/${r.type}/${r.id}`;
        const body = from === 0 ? stampFirstSchema(r.body) : r.body;
        const migrated = versions.migrate(body, subject, reads.max);
        if (migrated !== undefined || body !== r.body) update.run(migrated ?? body, r.type, r.id);
      }
    }
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(RECORD_SCHEMA_KEY, reads.max);
  }).immediate();
  return { schema: reads.max, migrated: { from, backup } };
}

/** A body written before records had versions is schema 1 without its `v`. */
function stampFirstSchema(json: string): string {
  const body = JSON.parse(json) as RecordBody;
  return body.v === undefined ? JSON.stringify({ v: 1, ...body }) : json;
}
