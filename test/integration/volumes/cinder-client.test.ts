// python-cinderclient 9.x (the real `cinder` command, noauth) against a real single-node
// `hearth serve`. No worker runs here yet, so operations stay in their transitional status;
// the test asserts what is true now: the transition happened and the op is recorded.
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

  it('create 1: a creating volume in Cinder\'s shape, in the single-node cluster', async () => {
    const run = await cinder('create', '--name', 'v1', '1');
    expect(run.code, run.stderr).toBe(0);
    volumeId = property(run.stdout, 'id') ?? '';
    expect(volumeId).toMatch(/^[0-9a-f-]{36}$/);
    expect(property(run.stdout, 'status')).toBe('creating');
    expect(property(run.stdout, 'size')).toBe('1');
    expect(property(run.stdout, 'cluster_name')).toMatch(/@default$/);
    expect(existsSync(join(hearth.dataDir, SQLITE_STATE_FILE))).toBe(true);
  });

  it('list and show', async () => {
    const list = await cinder('list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\| ${volumeId} \\| creating\\s*\\| v1 `));
    const show = await cinder('show', volumeId);
    expect(show.code, show.stderr).toBe(0);
    expect(property(show.stdout, 'name')).toBe('v1');
    expect(property(show.stdout, 'os-vol-tenant-attr:tenant_id')).toBe('admin');
    const byName = await cinder('show', 'v1');
    expect(property(byName.stdout, 'id')).toBe(volumeId);
  });

  it('extend is refused while creating, naming the condition', async () => {
    const run = await cinder('extend', volumeId, '2');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Invalid volume: Volume status must be available or in-use to extend (status is creating). (HTTP 400)');
  });

  it('reset-state, then extend: the volume is extending (a worker will finish it)', async () => {
    expect((await cinder('reset-state', '--state', 'available', volumeId)).code).toBe(0);
    const run = await cinder('extend', volumeId, '2');
    expect(run.code, run.stderr).toBe(0);
    const show = await cinder('show', volumeId);
    expect(property(show.stdout, 'status')).toBe('extending');
    expect(property(show.stdout, 'size')).toBe('1');
  });

  it('snapshot-create is refused while extending; after a reset it is created', async () => {
    const refused = await cinder('snapshot-create', '--name', 's1', volumeId);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(status is extending)');
    expect((await cinder('reset-state', '--state', 'available', volumeId)).code).toBe(0);
    const run = await cinder('snapshot-create', '--name', 's1', volumeId);
    expect(run.code, run.stderr).toBe(0);
    snapshotId = property(run.stdout, 'id') ?? '';
    expect(property(run.stdout, 'status')).toBe('creating');
    expect(property(run.stdout, 'volume_id')).toBe(volumeId);
  });

  it('snapshot-list shows it', async () => {
    const run = await cinder('snapshot-list');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`\\| ${snapshotId} \\| ${volumeId} \\| creating\\s*\\| s1 `));
  });

  it('delete is refused while the volume has a snapshot', async () => {
    const run = await cinder('delete', volumeId);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain('Invalid volume: Volume must have no snapshots to delete (it has 1).');
  });

  it('delete of an available volume is accepted and leaves it deleting', async () => {
    const created = await cinder('create', '--name', 'v2', '1');
    const id = property(created.stdout, 'id') ?? '';
    expect((await cinder('reset-state', '--state', 'available', id)).code).toBe(0);
    const run = await cinder('delete', id);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Request to delete volume ${id} has been accepted.`);
    expect(property((await cinder('show', id)).stdout, 'status')).toBe('deleting');
  });

  it('reset-state refuses statuses that do not exist or need a worker', async () => {
    const bogus = await cinder('reset-state', '--state', 'bogus', volumeId);
    expect(bogus.code).toBe(1);
    expect(bogus.stdout + bogus.stderr).toContain("'bogus' is not a valid volume status");
    const transitional = await cinder('reset-state', '--state', 'deleting', volumeId);
    expect(transitional.stdout + transitional.stderr).toContain('cannot reset a volume to deleting');
    expect(property((await cinder('show', volumeId)).stdout, 'status')).toBe('available');
  });

  it('counts the transitions in /metrics and keeps the state in the SQLite file across a restart', async () => {
    const metrics = await (await fetch(`${hearth.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/hearth_transitions_total\{resource="volume",result="ok"\} \d+/);
    expect(metrics).toMatch(/hearth_transitions_total\{resource="volume",result="conflict"\} \d+/);
    expect(metrics).toContain('hearth_transition_duration_seconds_count{backend="sqlite"}');
    expect(await hearth.stop()).toEqual({ code: 0, signal: null });
    const store = SqliteStateStore.open({ path: join(hearth.dataDir, SQLITE_STATE_FILE), clock: systemClock, metrics: createStateMetrics(new Registry()) });
    try {
      expect(await store.get({ type: 'volume', id: volumeId })).toMatchObject({ status: 'available', name: 'v1' });
      expect(await store.getOp({ type: 'snapshot', id: snapshotId })).toMatchObject({ kind: 'create_snapshot', owner: null });
    } finally {
      await store.close();
    }
  });
});
