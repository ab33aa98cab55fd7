// Volumes written straight into a store, with their listing index entries exactly as the store
// writes them (etcd: the same `indexEntries`; SQLite: the same columns), so that tests and
// benchmarks can fill 100,000 volumes in seconds. Every tenth volume is in `error`.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Etcd3, type IRequestOp } from 'etcd3';
import { KeyLayout } from '../../src/etcd/keys.js';
import { PROTOCOL } from '../../src/protocol.js';
import { indexEntries } from '../../src/state/etcd-listing.js';
import type { VolumeRecord } from '../../src/state/records.js';
import { RecordVersions } from '../../src/state/record-versions.js';
import { nameKeyOf } from '../../src/state/sqlite-schema.js';
import { SQLITE_STATE_FILE } from '../../src/state/sqlite-state-store.js';
import { newVolume } from '../contract/state-store.contract.js';

/** 1 record + 12 index entries each: 117 operations, under etcd's default 128 per txn. */
const RECORDS_PER_TXN = 9;
const FILL_IN_FLIGHT = 8;

/** Creation time of the first filled volume: 100,000 volumes 10 ms apart end about now. */
const FILL_EPOCH_MS = Date.now() - 1_000_000;

/** The i-th filled volume of project `admin`: named `vol-<i>`, every tenth in `error`, 10 ms apart. */
export function volumeAt(i: number, cluster: string): Omit<VolumeRecord, 'revision'> {
  return {
    ...newVolume({ id: randomUUID(), name: `vol-${i}`, status: i % 10 === 0 ? 'error' : 'available', cluster, host: null }),
    created_at: FILL_EPOCH_MS + i * 10,
    updated_at: null,
  };
}

/** The names of the first `count` filled volumes in the order the name listings sort them: by their bytes. */
export function filledNamesSorted(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `vol-${i}`).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Writes volumes [from, to) into etcd under `prefix`, with their listing index entries. */
export async function fillEtcd(endpoints: readonly string[], prefix: string, cluster: string, from: number, to: number): Promise<void> {
  const client = new Etcd3({ hosts: [...endpoints] });
  const keys = new KeyLayout(prefix);
  const versions = new RecordVersions();
  let next = from;
  try {
    await Promise.all(
      Array.from({ length: FILL_IN_FLIGHT }, async () => {
        while (next < to) {
          const ops: IRequestOp[] = [];
          for (let k = 0; k < RECORDS_PER_TXN && next < to; k++) {
            const record = volumeAt(next++, cluster);
            ops.push({ request_put: { key: Buffer.from(keys.resource('volume', record.id)), value: Buffer.from(versions.encode(record)) } });
            for (const [key, id] of indexEntries(keys, 'volume', { ...record, revision: '0' })) ops.push({ request_put: { key: Buffer.from(key), value: Buffer.from(id) } });
          }
          // Puts only: a txn whose answer was lost is safe to send again.
          for (let attempt = 1; ; attempt++) {
            try {
              await client.kv.txn({ compare: [], success: ops, failure: [] });
              break;
            } catch (err) {
              if (attempt >= 5) throw err;
              await new Promise((r) => setTimeout(r, 500 * attempt));
            }
          }
        }
      }),
    );
  } finally {
    client.close();
  }
}

/** Rows per transaction: short enough that a running daemon's writes never wait for its busy timeout. */
const SQLITE_ROWS_PER_TXN = 5_000;

/** Writes volumes [from, to) into a single node's SQLite file (a running daemon may have it open), in transactions of 5,000. */
export function fillSqlite(dataDir: string, cluster: string, from: number, to: number): void {
  for (let at = from; at < to; at += SQLITE_ROWS_PER_TXN) fillSqliteOnce(dataDir, cluster, at, Math.min(to, at + SQLITE_ROWS_PER_TXN));
}

function fillSqliteOnce(dataDir: string, cluster: string, from: number, to: number): void {
  const db = new Database(join(dataDir, SQLITE_STATE_FILE));
  try {
    db.pragma('busy_timeout = 30000');
    const versions = new RecordVersions(PROTOCOL.schema, PROTOCOL.schema.max);
    const insert = db.prepare(
      'INSERT INTO resources (type, id, version, status, project_id, cluster, name, volume_id, created_at, name_key, body) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)',
    );
    db.transaction(() => {
      const { value } = db.prepare("UPDATE meta SET value = value + ? WHERE key = 'revision' RETURNING value").get(to - from) as { value: number };
      let version = value - (to - from);
      for (let i = from; i < to; i++) {
        const r = volumeAt(i, cluster);
        insert.run('volume', r.id, ++version, r.status, r.project_id, r.cluster, r.name, r.created_at, nameKeyOf(r.name), versions.encode(r));
      }
    }).immediate();
  } finally {
    db.close();
  }
}
