import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterClient } from '../../support/orphans-cluster.js';
import { useReplicationCluster } from '../../support/replication-cluster.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'dr@be';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Replication failover and failback of a cluster of real processes on etcd and RabbitMQ, with
 * the file driver replicating a primary directory to a target directory (issue 17, part 4):
 * a member stopped during the failover serves the target from its first job after it starts,
 * and data written while failed over is on the primary after the failback.
 */
describe('failover and failback of a cluster of three workers (file driver, etcd, RabbitMQ)', () => {
  let primary: string;
  let target: string;
  const fixture = useReplicationCluster({
    cluster: 'dr',
    workers: ['a', 'b', 'c'],
    env: async (root) => {
      primary = join(root, 'primary');
      target = join(root, 'dr1');
      await mkdir(primary);
      await mkdir(target);
      return {
        HEARTH_DRIVER_NAME: 'file',
        HEARTH_DRIVER_FILE_DIR: primary,
        HEARTH_DRIVER_REPLICATION_TARGETS: `dr1:${target}`,
        HEARTH_BACKEND_HEALTH_CHECK_INTERVAL_MS: '1000',
        HEARTH_BACKEND_HEALTH_PROBE_TIMEOUT_MS: '1000',
      };
    },
  });
  const { workers, call, cluster, startWorker, stopWorker } = fixture;

  it('a replicating cluster shows enabled with its target; volumes are on the primary and the target', async () => {
    expect(await cluster()).toMatchObject({ replication_status: 'enabled', active_backend_id: null, frozen: false });
    const { client } = fixture;
    const id = await client.createVolume(1);
    await client.waitStatus('volume', id, 'available');
    expect(await exists(join(primary, `volume-${id}`))).toBe(true);
    expect(await exists(join(target, `volume-${id}`))).toBe(true);
  });

  it('fails over with a member stopped; the member, started again, serves the target from its first job (on disk); failback brings the data home', async () => {
    const { client } = fixture;
    await stopWorker('c');
    const before = await client.createVolume(1);
    await client.waitStatus('volume', before, 'available');

    const failover = await call('PUT', '/os-services/failover', { cluster: CLUSTER, backend_id: 'dr1' });
    expect(failover.status).toBe(202);
    await waitFor(async () => (await cluster()).replication_status === 'failed-over', { timeoutMs: 30_000, what: 'failed over' });
    expect(await cluster()).toMatchObject({ active_backend_id: 'dr1', status: 'disabled', disabled_reason: 'failed-over', frozen: false });
    const services = (await call('GET', '/os-services')).body?.services as Record<string, unknown>[];
    expect(services.filter((s) => s.binary === 'cinder-volume').map((s) => s.replication_status)).toEqual(['failed-over', 'failed-over', 'failed-over']);
    // A disabled cluster takes no new volume (Cinder's rule after a failover) until an operator enables it.
    expect((await call('POST', '/volumes', { volume: { size: 1 } })).status).toBe(400);
    expect((await call('PUT', '/clusters/enable', { name: CLUSTER, binary: 'cinder-volume' })).status).toBe(200);

    // Only c runs jobs now: it was down during the failover.
    await stopWorker('a');
    await stopWorker('b');
    await startWorker('c');
    const during = await client.createVolume(1);
    await client.waitStatus('volume', during, 'available');
    expect(await exists(join(target, `volume-${during}`))).toBe(true);
    expect(await exists(join(primary, `volume-${during}`))).toBe(false);
    await client.extend(before, 2);
    await waitFor(async () => (await client.record('volume', before)).size === 2, { what: 'extended on the target' });
    expect((await stat(join(target, `volume-${before}`))).size).toBe(2 * 1024 ** 3);
    expect((await stat(join(primary, `volume-${before}`))).size).toBe(1024 ** 3);

    // Failback: the target's changes reach the primary before it serves again.
    expect((await call('PUT', '/os-services/failover', { cluster: CLUSTER, backend_id: 'default' })).status).toBe(202);
    await waitFor(async () => (await cluster()).replication_status === 'enabled', { timeoutMs: 30_000, what: 'failed back' });
    expect(await cluster()).toMatchObject({ active_backend_id: null, status: 'enabled', frozen: false });
    expect(await exists(join(primary, `volume-${during}`))).toBe(true);
    expect((await stat(join(primary, `volume-${before}`))).size).toBe(2 * 1024 ** 3);
    const after = await client.createVolume(1);
    await client.waitStatus('volume', after, 'available');
    expect(await exists(join(primary, `volume-${after}`))).toBe(true);
    expect(await new ClusterClient(workers.get('c')!).metric('hearth_cluster_backend_epoch', { cluster: CLUSTER })).toBe(2);
  });
});
