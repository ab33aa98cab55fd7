import { describe, expect, it } from 'vitest';
import { backendWrites } from '../../../src/drivers/fake-journal.js';
import { readJournal } from '../../support/orphans-cluster.js';
import { useReplicationCluster } from '../../support/replication-cluster.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'pt@be';

/**
 * A member cut off during a failover (SIGSTOP past its lease, the whole process frozen: to the
 * others it is partitioned) comes back, applies the cluster record before its first job, and
 * writes nothing to the old primary: checked from the fake driver's journal, which names the
 * backend and epoch of every call.
 */
describe('a member stopped through a failover writes nothing to the old primary when it returns (fake driver journal)', () => {
  const fixture = useReplicationCluster({
    cluster: 'pt',
    workers: ['a', 'b', 'c'],
    env: { HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: 'dr1:simulated', HEARTH_DRIVER_FAKE_LATENCY_MS: '50' },
  });
  const { workers, call, cluster } = fixture;

  it('c, stopped through the failover, serves the target at the new epoch from its first job after it returns', async () => {
    const { client, journal } = fixture;
    const first = await client.createVolume(1);
    await client.waitStatus('volume', first, 'available');
    const c = workers.get('c')!;
    c.pause();
    expect((await call('PUT', '/os-services/failover', { cluster: CLUSTER, backend_id: 'dr1' })).status).toBe(202);
    await waitFor(async () => (await cluster()).replication_status === 'failed-over', { timeoutMs: 30_000, what: 'failed over while c is stopped' });
    const promotedAt = (await readJournal(journal)).entries.find((e) => e.call === 'failover' && e.event === 'start' && e.resource === 'backend:dr1')?.t;
    expect(promotedAt).toBeDefined();
    expect((await call('PUT', '/clusters/enable', { name: CLUSTER, binary: 'cinder-volume' })).status).toBe(200);

    // c's lease runs out while it is stopped: to the others it is gone.
    await waitFor(
      async () => {
        const services = ((await call('GET', '/os-services')).body as { services: { host: string; state: string }[] }).services;
        return services.find((x) => x.host === 'c@be')?.state === 'down' || undefined;
      },
      { timeoutMs: 30_000, what: 'c down' },
    );
    // c comes back: it rejoins as a new incarnation and applies the cluster record before its next job.
    c.resume();
    await waitFor(async () => c.logs().some((l) => l.msg === 'serving the backend the cluster record names' && l.epoch === 1) || undefined, { timeoutMs: 30_000, what: 'c serves dr1 at epoch 1' });
    await Promise.all(['a', 'b'].map(async (h) => workers.get(h)!.stop()));
    workers.delete('a');
    workers.delete('b');
    const ids = await Promise.all([1, 2, 3].map(() => client.createVolume(1)));
    for (const id of ids) await client.waitStatus('volume', id, 'available');
    await client.deleteVolume(first);
    await client.waitStatus('volume', first, 'deleted');

    const { report } = await readJournal(journal);
    const byC = report.calls.filter((x) => x.member === 'c@be' && x.start > (promotedAt ?? 0));
    expect(byC.length).toBeGreaterThanOrEqual(4);
    expect(byC.map((x) => `${x.backend}@${String(x.epoch)}`)).toEqual(byC.map(() => 'dr1@1'));
    expect(backendWrites(report.calls, 'default', promotedAt).filter((x) => x.start > (promotedAt ?? 0))).toEqual([]);
  });
});
