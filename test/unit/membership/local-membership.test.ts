import { NotDistributedError } from '../../../src/errors.js';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { buildClusterViews } from '../../../src/api/cluster-views.js';
import { describeMembership } from '../../contract/membership.contract.js';
import { TestSession } from '../../support/test-session.js';

async function open(dir: string, clock: ManualClock): Promise<LocalMembership> {
  return new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), clock);
}

describeMembership('local (single node, JSON file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-membership-'));
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const membership = await open(dir, clock);
  const opened: LocalMembership[] = [membership];
  return {
    membership,
    clock,
    second: async () => membership,
    restarted: async () => {
      const m = await open(dir, clock);
      opened.push(m);
      return m;
    },
    openSession: async (host) => TestSession.local(host),
    fenceHolds: async (fence) => {
      expect(fence.guards).toEqual([]);
      return fence.holds();
    },
    close: async () => {
      for (const m of opened) await m.close();
    },
  };
});

describe('LocalMembership specifics', () => {
  const identity = (host: string, cluster = 'c1@be') => ({ cluster, host, zone: 'nova' });

  it('refuses to run a cluster whose records name another host (data dir reused under a new host name)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-membership-'));
    const clock = new ManualClock(1_000);
    const first = await open(dir, clock);
    const a = await first.join({ identity: identity('old@be'), binary: VOLUME_BINARY, version: '1', session: TestSession.local('old@be') });
    await a.leave();
    const restarted = await open(dir, clock);
    const err = await restarted
      .join({ identity: identity('new@be'), binary: VOLUME_BINARY, version: '1', session: TestSession.local('new@be') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotDistributedError);
    expect(err).toMatchObject({ code: 'NOT_DISTRIBUTED' });
    expect((err as Error).message).toContain('cluster c1@be already has host old@be');
    expect((err as Error).message).toContain('needs etcd');
    // Nothing was written for the refused host, and the refusal left no alive entry behind.
    const snap = await restarted.snapshot();
    expect(snap.services.map((s) => s.host)).toEqual(['old@be']);
    expect(snap.alive).toEqual([]);
    // Another cluster on the same node is fine.
    const other = await restarted.join({ identity: identity('new@be', 'c2@be'), binary: VOLUME_BINARY, version: '1', session: TestSession.local('new@be') });
    expect(other.joined).toBe(true);
  });

  it('keeps records in one JSON file replaced atomically (no temporary file left)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-membership-'));
    const m = await open(dir, new ManualClock(5));
    const member = await m.join({ identity: identity('h1@be'), binary: VOLUME_BINARY, version: '1', session: TestSession.local('h1@be') });
    await m.setClusterDisabled('c1@be', VOLUME_BINARY, true, 'maint');
    await member.heartbeat();
    expect(await readdir(dir)).toEqual(['membership.json']);
    const stored = JSON.parse(await readFile(join(dir, 'membership.json'), 'utf8')) as { version: number; clusters: unknown[]; services: unknown[] };
    expect(stored.version).toBe(1);
    expect(stored.clusters).toEqual([expect.objectContaining({ name: 'c1@be', disabled: true, disabledReason: 'maint' })]);
    expect(stored.services).toEqual([expect.objectContaining({ host: 'h1@be' })]);
  });

  it('shows the member as down after a restart until it joins again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-membership-'));
    const clock = new ManualClock(5);
    const m = await open(dir, clock);
    await m.join({ identity: identity('h1@be'), binary: VOLUME_BINARY, version: '1', session: TestSession.local('h1@be') });
    // The process dies without leaving: its alive entry was only in memory.
    const after = await open(dir, clock);
    expect(buildClusterViews(await after.snapshot())[0]).toMatchObject({ up: false, numHosts: 1, numDownHosts: 1 });
  });

  it('refuses a damaged file instead of overwriting it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-membership-'));
    await writeFile(join(dir, 'membership.json'), '{"clusters": [ {"name": 1} ]}');
    await expect(LocalRecordFile.open(join(dir, 'membership.json'))).rejects.toThrow(/membership\.json is damaged .*move it away/);
  });
});
