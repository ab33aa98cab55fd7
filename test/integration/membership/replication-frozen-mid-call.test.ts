import { beforeAll, describe, expect, it } from 'vitest';
import { backendWrites } from '../../../src/drivers/fake-journal.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { readHistory } from '../../chaos/history.js';
import { readJournal } from '../../support/orphans-cluster.js';
import { useReplicationCluster } from '../../support/replication-cluster.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'fm@be';

/**
 * A member frozen in the middle of a driver call (SIGSTOP, shorter than its lease: it stays a
 * live member) while the cluster fails over: the failover's drain gives up on it and raises the
 * backend epoch. When it wakes, its call meets the new epoch at its last step and writes nothing
 * to the old primary (the fake driver's journal), its final write is refused on the epoch (etcd's
 * history: the volume's record was written `available` only after the raise, once), and the op
 * runs again at the new epoch, on the target.
 */
describe('a member frozen mid-call through a failover writes nothing to the old primary when it wakes', () => {
  // A lease far longer than the freeze (the member stays alive), a short drain.
  const fixture = useReplicationCluster({
    cluster: 'fm',
    env: { HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: 'dr1:simulated', HEARTH_LEASE_TTL_MS: '30000', HEARTH_LEASE_MARGIN_MS: '3000', HEARTH_SHUTDOWN_GRACE_MS: '1000' },
  });
  const { workers, call, cluster, startWorker } = fixture;
  // c alone at first, with slow calls, so the first create is c's and stays in flight.
  beforeAll(() => startWorker('c', { HEARTH_DRIVER_FAKE_LATENCY_MS: '3000' }));

  it('its call is refused at the new epoch, its final write too, and the op runs again on the target', async () => {
    const { client, journal, etcd } = fixture;
    const id = await client.createVolume(1);
    const resource = `volume:${id}`;
    await waitFor(async () => (await readJournal(journal)).entries.some((e) => e.call === 'createVolume' && e.resource === resource && e.event === 'start') || undefined, {
      timeoutMs: 30_000,
      intervalMs: 20,
      what: "c's create in flight",
    });
    const c = workers.get('c')!;
    c.pause();
    try {
      await startWorker('a');
      expect((await call('PUT', '/os-services/failover', { cluster: CLUSTER, backend_id: 'dr1' })).status).toBe(202);
      await waitFor(async () => (await cluster()).replication_status === 'failed-over' || undefined, { timeoutMs: 60_000, what: 'failed over while c is frozen' });
    } finally {
      c.resume();
    }
    await client.waitStatus('volume', id, 'available', 60_000);

    const { report, entries } = await readJournal(journal);
    const promotedAt = report.calls.find((x) => x.call === 'failover' && x.resource === 'backend:dr1' && x.ok)?.start;
    expect(promotedAt).toBeDefined();
    const creates = report.calls.filter((x) => x.call === 'createVolume' && x.resource === resource);
    // c's call, begun at epoch 0 on the primary, was refused at its last step.
    expect(creates[0]).toMatchObject({ member: 'c@be', backend: 'default', epoch: 0, ok: false });
    const refused = entries.find((e) => e.event === 'end' && e.seq === creates[0]!.seq && e.pid === creates[0]!.pid);
    expect(refused?.error).toMatch(/stale backend epoch 0/);
    // The run that succeeded was at the new epoch, on the target; nothing reached the old primary since the promotion.
    expect(creates.filter((x) => x.ok).map((x) => `${x.backend}@${String(x.epoch)}`)).toEqual(['dr1@1']);
    expect(backendWrites(report.calls, 'default', promotedAt)).toEqual([]);

    // etcd's history: the record became available once, after the epoch was raised.
    const keys = new KeyLayout(etcd.prefix);
    const history = await readHistory(etcd.client, etcd.prefix);
    const raised = history.find((e) => e.key === keys.clusterEpoch(CLUSTER) && e.type === 'put' && e.version === 1);
    expect(raised).toBeDefined();
    const available = history.filter((e) => e.key === keys.resource('volume', id) && e.type === 'put' && (JSON.parse(e.value!) as { status: string }).status === 'available');
    expect(available).toHaveLength(1);
    expect(available[0]!.revision).toBeGreaterThan(raised!.revision);
  }, 180_000);
});
