import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { Registry } from 'prom-client';
import Database from 'better-sqlite3';
import { describeStateStore, newVolume, type StoredRef } from '../../contract/state-store.contract.js';

describeStateStore('SQLite', async ({ clock, metrics }) => {
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
});

describe('SqliteStateStore specifics', () => {
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

  it('fails to open an unusable path with a clear backend error', () => {
    expect(() => SqliteStateStore.open({ path: '/proc/definitely/not/here.sqlite', clock: new ManualClock(1), metrics: createStateMetrics(new Registry()) })).toThrow(
      /state store/,
    );
  });
});
