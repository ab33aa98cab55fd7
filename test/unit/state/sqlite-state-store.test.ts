import { PROTOCOL } from '../../../src/protocol.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../../../src/errors.js';
import { ProtocolMismatchError } from '../../../src/protocol.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { Registry } from 'prom-client';
import Database from 'better-sqlite3';
import { describeStateStore, newVolume, type StoredRef, type StateStoreFactory } from '../../contract/state-store.contract.js';
import { describeSourceHolds } from '../../contract/source-holds.contract.js';

const factory: StateStoreFactory = async ({ clock, metrics }) => {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
  const path = join(dir, SQLITE_STATE_FILE);
  const store = SqliteStateStore.open({ path, clock, metrics });
  // A second connection to the same file, as another process would have.
  const raw = new Database(path);
  const table = (w: StoredRef): string => (w.kind === 'op' ? 'ops' : 'resources');
  return {
    store,
    readStored: async (w) => (raw.prepare(`SELECT body FROM ${table(w)} WHERE type = ? AND id = ?`).get(w.type, w.id) as { body: string } | undefined)?.body,
    writeStored: async (w, text) => void raw.prepare(`UPDATE ${table(w)} SET body = ? WHERE type = ? AND id = ?`).run(text, w.type, w.id),
    makeFence: async () => {
      let held = true;
      return { fence: { guards: [], holds: () => held, description: 'test session' }, revoke: async () => void (held = false) };
    },
    close: async () => {
      raw.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};
describeStateStore('SQLite', factory);
describeSourceHolds('SQLite', factory);

describe('SqliteStateStore specifics', () => {
  it('a publish stamp that finds every op ended writes nothing, not even a new revision', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const path = join(dir, SQLITE_STATE_FILE);
    const store = SqliteStateStore.open({ path, clock: new ManualClock(1), metrics: createStateMetrics(new Registry()) });
    const raw = new Database(path, { readonly: true });
    const revision = (): number => (raw.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number }).value;
    try {
      const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
      if (!created.ok || !created.op) throw new Error('create failed');
      const ref = { type: 'volume' as const, id: created.record.id };
      await store.transition(ref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
      const before = revision();
      expect(await store.markPublished([created.op], 5)).toBe(0);
      expect(revision()).toBe(before);
    } finally {
      raw.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts its statements by kind: a create, a claim with the record and a final write are three transactions of one read each', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const registry = new Registry();
    const store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock: new ManualClock(1), metrics: createStateMetrics(registry) });
    const counts = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await registry.getSingleMetric('hearth_sqlite_statements_total')?.get())?.values.map((v) => [String(v.labels.kind), v.value]) ?? []);
    try {
      const before = await counts();
      const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
      if (!created.ok || !created.op) throw new Error('create failed');
      const ref = { type: 'volume' as const, id: created.record.id };
      const claim = await store.updateOp(ref, { expect: { opId: created.op.opId, owner: null }, set: { owner: { host: 'h', incarnation: 'h@x:1', aliveRevision: '1' } }, withRecord: true });
      expect(claim).toMatchObject({ ok: true, record: { id: ref.id, status: 'creating' } });
      await store.transition(ref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
      const after = await counts();
      const delta: Record<string, number> = {};
      for (const [kind, n] of Object.entries(after)) if (n !== (before[kind] ?? 0)) delta[kind] = n - (before[kind] ?? 0);
      // Per transaction: one read of record and op, the revision, the writes (docs/worker.md, "Statements per operation").
      expect(delta).toEqual({ begin: 3, commit: 3, select: 3, update: 4, insert: 3, delete: 1 });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps its records across a reopen of the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const path = join(dir, SQLITE_STATE_FILE);
    const clock = new ManualClock(1);
    const first = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    const created = await first.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    await first.close();
    const second = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    if (!created.ok) throw new Error('create failed');
    expect(await second.get({ type: 'volume', id: created.record.id })).toEqual(created.record);
    expect(await second.getOp({ type: 'volume', id: created.record.id })).toEqual(created.op);
    await second.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses etcd key guards it cannot check', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock: new ManualClock(1), metrics: createStateMetrics(new Registry()) });
    const fence = { guards: [{ key: '/hearth/alive/x', createRevision: '5', expect: 'equal' as const }], holds: () => true, description: 'alive/x' };
    const err = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' }, fence }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoordinatorError);
    expect(err).toMatchObject({ code: 'UNSUPPORTED' });
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates a file written before records had versions on open: a consistent backup first, then every record in one transaction', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const path = join(dir, SQLITE_STATE_FILE);
    const clock = new ManualClock(7);
    const first = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    expect(first.recordSchema).toEqual({ schema: PROTOCOL.schema.max });
    const created = await first.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create failed');
    await first.close();
    // Make it a file of the release before versions: bodies without `v`, no schema row.
    const raw = new Database(path);
    for (const table of ['resources', 'ops']) {
      for (const row of raw.prepare(`SELECT type, id, body FROM ${table}`).all() as { type: string; id: string; body: string }[]) {
        const { v: _v, ...body } = JSON.parse(row.body) as Record<string, unknown>;
        raw.prepare(`UPDATE ${table} SET body = ? WHERE type = ? AND id = ?`).run(JSON.stringify(body), row.type, row.id);
      }
    }
    raw.prepare("DELETE FROM meta WHERE key = 'schema'").run();
    raw.close();

    const second = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    expect(second.recordSchema).toEqual({ schema: PROTOCOL.schema.max, migrated: { from: 0, backup: `${path}.schema-0-7.bak` } });
    // Schema 2 gives a volume of schema 1 no source, no attachments and the default type's id.
    expect(await second.get({ type: 'volume', id: created.record.id })).toMatchObject({ ...created.record, attachments: [], volume_type_id: '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11' });
    await second.close();
    expect((await readdir(dir)).filter((f) => f.endsWith('.bak'))).toEqual([`${SQLITE_STATE_FILE}.schema-0-7.bak`]);
    // The backup is a whole database of the old file: its records have no version.
    const backup = new Database(`${path}.schema-0-7.bak`, { readonly: true });
    const body = JSON.parse((backup.prepare('SELECT body FROM resources').get() as { body: string }).body) as Record<string, unknown>;
    backup.close();
    expect(body).not.toHaveProperty('v');
    // Opening again migrates nothing.
    const third = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    expect(third.recordSchema).toEqual({ schema: PROTOCOL.schema.max });
    await third.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a file of table schema 1 its listing columns and indexes on open, filled from the records', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const path = join(dir, SQLITE_STATE_FILE);
    const clock = new ManualClock(1_000);
    const first = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    const ids: string[] = [];
    for (const name of ['b', null, 'a']) {
      const created = await first.create('volume', { record: newVolume({ name }), op: { kind: 'create_volume' } });
      if (!created.ok) throw new Error('create failed');
      ids.push(created.record.id);
      await clock.advance(1_000);
    }
    await first.close();
    // Make it a file of table schema 1: no listing columns, the old indexes.
    const raw = new Database(path);
    for (const index of ['resources_by_created', 'resources_by_project_created', 'resources_by_status_created', 'resources_by_project_status_created', 'resources_by_name', 'resources_by_project_name']) {
      raw.exec(`DROP INDEX ${index}`);
    }
    raw.exec('ALTER TABLE resources DROP COLUMN created_at');
    raw.exec('ALTER TABLE resources DROP COLUMN name_key');
    raw.exec('CREATE INDEX resources_by_status ON resources (type, status)');
    raw.pragma('user_version = 1');
    raw.close();

    const second = SqliteStateStore.open({ path, clock, metrics: createStateMetrics(new Registry()) });
    expect((await second.list('volume')).items.map((v) => v.id)).toEqual([ids[2], ids[1], ids[0]]);
    expect((await second.list('volume', { sort: [{ key: 'name', dir: 'asc' }] })).items.map((v) => v.name)).toEqual([null, 'a', 'b']);
    await second.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    const plan = check.prepare("EXPLAIN QUERY PLAN SELECT id FROM resources WHERE type = 'volume' AND status = 'error' ORDER BY created_at DESC, id DESC LIMIT 10").all() as { detail: string }[];
    check.close();
    // Served by an index in order: no sort of the matching rows.
    expect(plan.map((r) => r.detail).join(' ')).toMatch(/USING (COVERING )?INDEX resources_by_status_created/);
    expect(plan.map((r) => r.detail).join(' ')).not.toMatch(/TEMP B-TREE/);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to open a file a newer release migrated, naming its schema and this build’s', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-state-'));
    const path = join(dir, SQLITE_STATE_FILE);
    await SqliteStateStore.open({ path, clock: new ManualClock(1), metrics: createStateMetrics(new Registry()) }).close();
    const raw = new Database(path);
    raw.prepare("UPDATE meta SET value = 5 WHERE key = 'schema'").run();
    raw.close();
    const err = (() => {
      try {
        return SqliteStateStore.open({ path, clock: new ManualClock(1), metrics: createStateMetrics(new Registry()) });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ProtocolMismatchError);
    expect(String((err as Error).message)).toMatch(/record schema 5, written by a newer release of hearth; this build reads schemas 1/);
    await rm(dir, { recursive: true, force: true });
  });

  it('fails to open an unusable path with a clear backend error', () => {
    expect(() => SqliteStateStore.open({ path: '/proc/definitely/not/here.sqlite', clock: new ManualClock(1), metrics: createStateMetrics(new Registry()) })).toThrow(
      /state store/,
    );
  });
});
