import { describe, expect, it } from 'vitest';
import { readJournal } from '../../support/orphans-cluster.js';
import { useReplicationCluster } from '../../support/replication-cluster.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'tk@be';
const DRAINING = 'waiting for the operations in flight before raising the backend epoch';

/**
 * The member running a failover is killed mid-way (while it waits for the operations in flight):
 * the failover stays in the cluster record with the dead claimant as its owner; another member
 * sees it leave, waits for its fence, takes the failover over and finishes it (docs/cleanup.md
 * "Replication failover").
 */
describe('the runner of a failover killed mid-failover: another member takes it over and finishes it', () => {
  // Slow driver calls, so the failover's drain has a run to wait for.
  const fixture = useReplicationCluster({
    cluster: 'tk',
    workers: ['a', 'b'],
    env: { HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: 'dr1:simulated', HEARTH_DRIVER_FAKE_LATENCY_MS: '4000', HEARTH_ORPHANS_AUTO_CLEANUP: 'true', HEARTH_ORPHANS_GRACE_MS: '3000' },
  });
  const { workers, call, cluster } = fixture;

  it('finishes the failover on the survivor, after the dead claimant is fenced', async () => {
    const { client, journal } = fixture;
    const id = await client.createVolume(1);
    await waitFor(async () => (await readJournal(journal)).entries.some((e) => e.call === 'createVolume' && e.event === 'start') || undefined, { what: 'a create in flight' });
    expect((await call('PUT', '/os-services/failover', { cluster: CLUSTER, backend_id: 'dr1' })).status).toBe(202);
    const claimant = await waitFor(
      async () => [...workers.entries()].find(([, w]) => w.logs().some((l) => l.msg === DRAINING))?.[0],
      { timeoutMs: 15_000, intervalMs: 20, what: 'the claimant draining' },
    );
    await workers.get(claimant)!.kill();
    workers.delete(claimant);
    const [survivorHost, survivor] = [...workers.entries()][0]!;
    expect((await cluster()).replication_status).toBe('failing-over');

    await waitFor(async () => (await cluster()).replication_status === 'failed-over' || undefined, { timeoutMs: 60_000, what: 'the failover finished by the survivor' });
    expect(await cluster()).toMatchObject({ active_backend_id: 'dr1', frozen: false, status: 'disabled', disabled_reason: 'failed-over' });
    expect(survivor.logs().some((l) => l.msg === 'taking over the failover of a member that died')).toBe(true);
    const promotions = (await readJournal(journal)).entries.filter((e) => e.call === 'failover' && e.event === 'end' && e.ok === true);
    expect(promotions.map((e) => e.member)).toContain(`${survivorHost}@be`);
    // The create that was in flight ends: run to its end by the survivor, or (the claimant's own) cleaned up as its orphan.
    await waitFor(async () => ['available', 'error'].includes(await client.status('volume', id)) || undefined, { timeoutMs: 60_000, what: 'the create in flight settled' });
  });
});
