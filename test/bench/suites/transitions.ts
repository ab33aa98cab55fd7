// Conditional transitions per second: the etcd store against raw etcd compare-and-put txns
// (the run's baselines), and the SQLite store against a plain better-sqlite3 `UPDATE … WHERE` in
// a transaction, measured here on the same disk with the same pragmas.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, standalone, versus } from '../types.js';
import { measure } from './etcd-baseline.js';

/** Creates `n` available volumes and returns their ids. */
async function volumes(store: StateStore, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const created = await store.create('volume', { record: newVolume({ id: randomUUID() }), op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create failed');
    const ref = { type: 'volume' as const, id: created.record.id };
    const done = await store.transition(ref, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
    if (!done.ok) throw new Error('completion failed');
    ids.push(ref.id);
  }
  return ids;
}

/** One conditional transition: still available → record the acting host. */
async function transition(store: StateStore, id: string, i: number): Promise<void> {
  const res = await store.transition({ type: 'volume', id }, { expect: { status: 'available' }, set: { host: `node${i % 7}@bench` }, by: 'worker' });
  if (!res.ok) throw new Error(`transition refused: ${JSON.stringify(res.failed)}`);
}

/** Ops and milliseconds spent, summed over slices. */
export interface Tally {
  ops: number;
  ms: number;
}

async function slice(tally: Tally, seconds: number, inFlight: number, op: (worker: number, i: number) => Promise<unknown>): Promise<void> {
  const run = await measure(seconds, inFlight, op);
  tally.ops += run.latenciesMs.length;
  tally.ms += (run.latenciesMs.length / run.opsPerSecond) * 1_000;
}

export const perSecond = (t: Tally): number => (t.ops / t.ms) * 1_000;

function paired(name: string, value: number, baseline: string, baselineValue: number): BenchResult {
  return { name, value, unit: 'ops/s', baseline, baseline_value: baselineValue, ratio: value / baselineValue };
}

/**
 * The same comparison with raw compare-and-put txns (as the baseline suite sends them) and
 * transitions in alternating slices, so both see the same load on a shared machine.
 */
async function pairedEtcdFigures(ctx: BenchContext, store: StateStore, ids: readonly string[]): Promise<BenchResult[]> {
  const raw = new Etcd3({ hosts: ctx.etcd.endpoints });
  try {
    const keys = ids.map((id) => `/bench/paired/${id}`);
    const revisions = keys.map(() => '0');
    const compareAndPut = async (w: number): Promise<void> => {
      const key = keys[w] as string;
      const res = await raw.if(key, 'Mod', '==', revisions[w] as string).then(raw.put(key).value('x')).commit();
      revisions[w] = res.header.revision;
    };
    const results: BenchResult[] = [];
    for (const inFlight of [1, 32]) {
      const rawTally: Tally = { ops: 0, ms: 0 };
      const storeTally: Tally = { ops: 0, ms: 0 };
      for (let s = 0; s < 6; s++) {
        await slice(rawTally, ctx.seconds / 6, inFlight, (w) => compareAndPut(w));
        await slice(storeTally, ctx.seconds / 6, inFlight, (w, i) => transition(store, ids[w] as string, i));
      }
      const base = `etcd.raw_txn_c${inFlight}_paired_ops_per_s`;
      results.push(standalone(base, perSecond(rawTally), 'ops/s'), paired(`transition.c${inFlight}_paired_ops_per_s`, perSecond(storeTally), base, perSecond(rawTally)));
    }
    return results;
  } finally {
    raw.close();
  }
}

async function etcdFigures(ctx: BenchContext): Promise<BenchResult[]> {
  const prefix = `/bench/state-${randomUUID()}`;
  const client = createEtcdClient({ endpoints: ctx.etcd.endpoints, prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 });
  const store = new EtcdStateStore({ client, keys: new KeyLayout(prefix), clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger() });
  try {
    const ids = await volumes(store, 32);
    const c1 = await measure(ctx.seconds, 1, (_w, i) => transition(store, ids[0] as string, i));
    const c32 = await measure(ctx.seconds, 32, (w, i) => transition(store, ids[w] as string, i));
    ctx.log(`etcd: c1 ${c1.opsPerSecond.toFixed(0)}/s (p50 ${percentile(c1.latenciesMs, 50).toFixed(2)} ms), c32 ${c32.opsPerSecond.toFixed(0)}/s`);
    return [
      versus(ctx, 'transition.c1_ops_per_s', c1.opsPerSecond, 'ops/s', 'etcd.raw_txn_ops_per_s'),
      versus(ctx, 'transition.c1_p50_ms', percentile(c1.latenciesMs, 50), 'ms', 'etcd.raw_txn_p50_ms'),
      versus(ctx, 'transition.c32_ops_per_s', c32.opsPerSecond, 'ops/s', 'etcd.raw_txn_c32_ops_per_s'),
      ...(await pairedEtcdFigures(ctx, store, ids)),
    ];
  } finally {
    await store.close();
    client.close();
  }
}

/** The plain better-sqlite3 baseline: one `UPDATE … WHERE version = ?` per transaction. */
export function rawSqlite(ctx: BenchContext, file = 'raw.sqlite'): { slice: (ms: number, tally: Tally) => void; close: () => void } {
  const db = new Database(join(ctx.tmpDir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL)');
  const body = JSON.stringify(newVolume({ status: 'available' }));
  db.prepare('INSERT INTO t VALUES (?, 1, ?)').run('v', body);
  const update = db.prepare('UPDATE t SET version = version + 1, body = ? WHERE id = ? AND version = ?');
  const step = db.transaction((version: number) => update.run(body, 'v', version).changes);
  let version = 1;
  return {
    slice: (ms, tally) => {
      const started = performance.now();
      while (performance.now() - started < ms) {
        if (step(version) !== 1) throw new Error('raw update lost its row');
        version++;
        tally.ops++;
      }
      tally.ms += performance.now() - started;
    },
    close: () => db.close(),
  };
}

/**
 * Both SQLite figures hit the same fsync-bound disk, whose speed drifts a lot on a shared
 * machine; so they are measured in alternating slices and summed, not one after the other.
 */
async function sqliteFigures(ctx: BenchContext): Promise<BenchResult[]> {
  const raw = rawSqlite(ctx);
  const store = SqliteStateStore.open({ path: join(ctx.tmpDir, 'state.sqlite'), clock: systemClock, metrics: createStateMetrics(new Registry()) });
  try {
    const [id] = await volumes(store, 1);
    const rawTally: Tally = { ops: 0, ms: 0 };
    const storeTally: Tally = { ops: 0, ms: 0 };
    const slices = 10;
    const sliceMs = (ctx.seconds * 1_000) / slices;
    for (let s = 0; s < slices; s++) {
      raw.slice(sliceMs, rawTally);
      const started = performance.now();
      for (let i = 0; performance.now() - started < sliceMs; i++, storeTally.ops++) await transition(store, id as string, i);
      storeTally.ms += performance.now() - started;
    }
    const rawPerS = perSecond(rawTally);
    const storePerS = perSecond(storeTally);
    ctx.log(`sqlite: store ${storePerS.toFixed(0)}/s, raw UPDATE ${rawPerS.toFixed(0)}/s (synchronous=FULL, WAL, ${slices} alternating slices)`);
    return [
      standalone('sqlite.raw_update_ops_per_s', rawPerS, 'ops/s'),
      { name: 'transition.sqlite_ops_per_s', value: storePerS, unit: 'ops/s', baseline: 'sqlite.raw_update_ops_per_s', baseline_value: rawPerS, ratio: storePerS / rawPerS },
    ];
  } finally {
    await store.close();
    raw.close();
  }
}

export const suite: BenchSuite = {
  name: 'state transitions',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    return [...(await etcdFigures(ctx)), ...(await sqliteFigures(ctx))];
  },
};
