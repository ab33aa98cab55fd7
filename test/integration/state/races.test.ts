// 50 concurrent deletes at one volume from two separate OS processes (25 each): exactly one
// wins; the other 49 get a conflict that names the failed condition. On etcd and on SQLite.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { sourcesOf } from '../../../src/state/state-machine.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { useEtcd } from '../../support/context.js';
import { ManagedProcess } from '../../support/process.js';
import { GiveUp, waitFor } from '../../support/wait.js';

const REPO = resolve(import.meta.dirname, '../../..');
const PER_PROCESS = 25;

interface RaceResult {
  readonly ok: boolean;
  readonly opId?: string;
  readonly failed?: { field: string; expected: unknown; actual: unknown };
  readonly error?: string;
}

async function availableVolume(store: StateStore): Promise<string> {
  const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
  if (!created.ok) throw new Error('create failed');
  const done = await store.transition({ type: 'volume', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
  if (!done.ok) throw new Error('completion failed');
  return created.record.id;
}

/** Starts two racer processes, releases them together, and returns all 50 results. */
async function race(env: Record<string, string>): Promise<{ results: RaceResult[]; pids: number[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-race-'));
  const go = join(dir, 'go');
  const children = [1, 2].map((n) =>
    ManagedProcess.start({
      command: process.execPath,
      args: ['--import', 'tsx', join(REPO, 'test/support/children/delete-racer.ts')],
      cwd: REPO,
      logDir: dir,
      name: `racer-${n}`,
      env: { PATH: process.env.PATH, ...env, RACE_COUNT: String(PER_PROCESS), RACE_GO: go, RACE_OUT: join(dir, `out-${n}.json`) },
    }),
  );
  try {
    await waitFor(
      () => {
        const dead = children.find((c) => !c.alive);
        if (dead) throw new GiveUp(`a racer exited early:\n${dead.tail()}`);
        return children.every((c) => c.output().includes('ready'));
      },
      { timeoutMs: 60_000, what: 'both racers to be ready' },
    );
    await writeFile(go, '');
    const exits = await Promise.all(children.map((c) => c.waitForExit()));
    expect(exits, children.map((c) => c.tail()).join('\n')).toEqual([{ code: 0, signal: null }, { code: 0, signal: null }]);
    const outs = await Promise.all([1, 2].map(async (n) => JSON.parse(await readFile(join(dir, `out-${n}.json`), 'utf8')) as { pid: number; results: RaceResult[] }));
    return { results: outs.flatMap((o) => o.results), pids: outs.map((o) => o.pid) };
  } finally {
    for (const c of children) c.killNow();
  }
}

function expectOneWinner(results: RaceResult[]): RaceResult {
  expect(results).toHaveLength(2 * PER_PROCESS);
  const errors = results.filter((r) => r.error !== undefined);
  expect(errors).toEqual([]);
  const winners = results.filter((r) => r.ok);
  expect(winners).toHaveLength(1);
  const losers = results.filter((r) => !r.ok);
  expect(losers).toHaveLength(2 * PER_PROCESS - 1);
  for (const loser of losers) {
    expect(loser.failed).toEqual({ field: 'status', expected: sourcesOf('volume', 'deleting', 'api'), actual: 'deleting' });
  }
  return winners[0]!;
}

describe('50 concurrent deletes from two processes', () => {
  const etcd = useEtcd();
  afterAll(() => etcd.close());

  it('on one etcd: exactly one wins, 49 conflicts name `status`', async () => {
    const client = createEtcdClient({ endpoints: etcd.endpoints, prefix: etcd.prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 });
    const store = new EtcdStateStore({ client, keys: new KeyLayout(etcd.prefix), clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger() });
    try {
      const id = await availableVolume(store);
      const { results, pids } = await race({ RACE_BACKEND: 'etcd', RACE_ETCD_ENDPOINTS: etcd.endpoints.join(','), RACE_ETCD_PREFIX: etcd.prefix, RACE_VOLUME_ID: id });
      expect(new Set(pids).size).toBe(2);
      const winner = expectOneWinner(results);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'deleting' });
      expect(await store.getOp({ type: 'volume', id })).toMatchObject({ kind: 'delete_volume', opId: winner.opId });
    } finally {
      await store.close();
      client.close();
    }
  });

  it('on one SQLite file: exactly one wins, 49 conflicts name `status`', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-race-db-'));
    const path = join(dir, SQLITE_STATE_FILE);
    const store = SqliteStateStore.open({ path, clock: systemClock, metrics: createStateMetrics(new Registry()) });
    try {
      const id = await availableVolume(store);
      const { results, pids } = await race({ RACE_BACKEND: 'sqlite', RACE_SQLITE_PATH: path, RACE_VOLUME_ID: id });
      expect(new Set(pids).size).toBe(2);
      const winner = expectOneWinner(results);
      expect(await store.get({ type: 'volume', id })).toMatchObject({ status: 'deleting' });
      expect(await store.getOp({ type: 'volume', id })).toMatchObject({ kind: 'delete_volume', opId: winner.opId });
    } finally {
      await store.close();
    }
  });
});
