// python-cinderclient 9.x (the real `cinder` command, noauth) against a real single-node
// `hearth serve`: the API records each operation, the worker (the same volume manager a cluster
// runs, over the in-process bus and the file driver) carries it out.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { requireBinary } from '../../support/binaries.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';

const exec = promisify(execFile);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A `| key | value |` row of cinder's property table. */
function property(table: string, key: string): string | undefined {
  const row = table.split('\n').find((l) => new RegExp(`^\\|\\s*${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*\\|`).test(l));
  return row?.split('|')[2]?.trim();
}

describe('python-cinderclient against hearth serve (single node)', () => {
  let hearth: HearthProcess;
  let cinder: (...args: string[]) => Promise<Run>;
  /** Polls `cinder show` (or `snapshot-show`) until the property has the value. */
  const eventually = async (what: 'show' | 'snapshot-show', id: string, key: string, value: string): Promise<string> => {
    let last = '';
    await expect
      .poll(
        async () => {
          last = (await cinder(what, id)).stdout;
          return property(last, key);
        },
        { timeout: 20_000, interval: 200 },
      )
      .toBe(value);
    return last;
  };

  beforeAll(async () => {
    requireBinary('cinder', 'python3-cinderclient');
    hearth = await startHearth({ name: 'cinder-client' });
    const base = ['--os-auth-type', 'noauth', '--os-user-id', 'admin', '--os-project-id', 'admin', '--os-endpoint', `${hearth.apiUrl}/v3/admin`];
    cinder = async (...args) => {
      try {
        const { stdout, stderr } = await exec('cinder', [...base, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    };
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  let volumeId = '';
  let snapshotId = '';

  it('create 1: accepted as creating, in Cinder\'s shape, then available on this host', async () => {
    const run = await cinder('create', '--name', 'v1', '1');
    expect(run.code, run.stderr).toBe(0);
    volumeId = property(run.stdout, 'id') ?? '';
    expect(volumeId).toMatch(/^[0-9a-f-]{36}$/);
    expect(property(run.stdout, 'size')).toBe('1');
    expect(property(run.stdout, 'cluster_name')).toMatch(/@default$/);
    const shown = await eventually('show', volumeId, 'status', 'available');
    expect(property(shown, 'os-vol-host-attr:host')).toMatch(/@default$/);
    expect(existsSync(join(hearth.dataDir, SQLITE_STATE_FILE))).toBe(true);
    expect(existsSync(join(hearth.dataDir, 'volumes', `volume-${volumeId}`))).toBe(true);
  });

  it('list and show', async () => {
    const list = await cinder('list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\| ${volumeId} \\| available\\s*\\| v1 `));
    const show = await cinder('show', volumeId);
    expect(show.code, show.stderr).toBe(0);
    expect(property(show.stdout, 'name')).toBe('v1');
    expect(property(show.stdout, 'os-vol-tenant-attr:tenant_id')).toBe('admin');
    const byName = await cinder('show', 'v1');
    expect(property(byName.stdout, 'id')).toBe(volumeId);
  });

  it('extend to 2: the extended size shows once the worker has grown the file', async () => {
    const run = await cinder('extend', volumeId, '2');
    expect(run.code, run.stderr).toBe(0);
    const shown = await eventually('show', volumeId, 'size', '2');
    expect(property(shown, 'status')).toBe('available');
  });

  it('snapshot-create: the snapshot becomes available; snapshot-list shows it', async () => {
    const run = await cinder('snapshot-create', '--name', 's1', volumeId);
    expect(run.code, run.stderr).toBe(0);
    snapshotId = property(run.stdout, 'id') ?? '';
    expect(property(run.stdout, 'volume_id')).toBe(volumeId);
    await eventually('snapshot-show', snapshotId, 'status', 'available');
    const list = await cinder('snapshot-list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\| ${snapshotId} \\| ${volumeId} \\| available\\s*\\| s1 `));
    expect(existsSync(join(hearth.dataDir, 'volumes', `snapshot-${snapshotId}`))).toBe(true);
  });

  it('delete is refused while the volume has a snapshot', async () => {
    const run = await cinder('delete', volumeId);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain('Invalid volume: Volume must have no snapshots to delete (it has 1).');
  });

  it('reset-state refuses statuses that do not exist or need a worker', async () => {
    const bogus = await cinder('reset-state', '--state', 'bogus', volumeId);
    expect(bogus.code).toBe(1);
    expect(bogus.stdout + bogus.stderr).toContain("'bogus' is not a valid volume status");
    const transitional = await cinder('reset-state', '--state', 'deleting', volumeId);
    expect(transitional.stdout + transitional.stderr).toContain('cannot reset a volume to deleting');
    expect(property((await cinder('show', volumeId)).stdout, 'status')).toBe('available');
  });

  it('snapshot-delete, then delete: both complete and the files are gone', async () => {
    expect((await cinder('snapshot-delete', snapshotId)).code).toBe(0);
    await expect.poll(async () => (await cinder('snapshot-list')).stdout.includes(snapshotId), { timeout: 20_000, interval: 200 }).toBe(false);
    const run = await cinder('delete', volumeId);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Request to delete volume ${volumeId} has been accepted.`);
    await expect.poll(async () => (await cinder('list')).stdout.includes(volumeId), { timeout: 20_000, interval: 200 }).toBe(false);
    expect((await cinder('show', volumeId)).code).toBe(1);
    expect(existsSync(join(hearth.dataDir, 'volumes', `volume-${volumeId}`))).toBe(false);
    expect(existsSync(join(hearth.dataDir, 'volumes', `snapshot-${snapshotId}`))).toBe(false);
  });

  it('counts the operations and transitions in /metrics, and keeps the state in the SQLite file across a restart', async () => {
    const kept = property((await cinder('create', '--name', 'kept', '1')).stdout, 'id') ?? '';
    await eventually('show', kept, 'status', 'available');
    const metrics = await (await fetch(`${hearth.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/hearth_transitions_total\{resource="volume",result="ok"\} \d+/);
    expect(metrics).toMatch(/hearth_transitions_total\{resource="volume",result="conflict"\} \d+/);
    expect(metrics).toContain('hearth_transition_duration_seconds_count{backend="sqlite"}');
    expect(metrics).toContain('hearth_operations_total{operation="create_volume",result="success"} 2');
    expect(metrics).toContain('hearth_operations_total{operation="extend_volume",result="success"} 1');
    expect(metrics).toContain('hearth_operations_total{operation="delete_volume",result="success"} 1');
    expect(metrics).toContain('hearth_operations_in_progress{operation="create_volume"} 0');
    expect(await hearth.stop()).toEqual({ code: 0, signal: null });
    const store = SqliteStateStore.open({ path: join(hearth.dataDir, SQLITE_STATE_FILE), clock: systemClock, metrics: createStateMetrics(new Registry()) });
    try {
      expect(await store.get({ type: 'volume', id: kept })).toMatchObject({ status: 'available', name: 'kept' });
      expect(await store.get({ type: 'volume', id: volumeId })).toBeUndefined();
      expect(await store.listOps()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
