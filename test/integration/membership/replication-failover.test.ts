import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv } from '../../support/orphans-cluster.js';
import { ReplicationAdmin } from '../../support/replication-api.js';
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
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let root: string;
  let primary: string;
  let target: string;
  let env: Record<string, string>;
  let api: HearthProcess;
  let client: ClusterClient;
  const workers = new Map<string, HearthProcess>();

  const startWorker = async (host: string): Promise<HearthProcess> => {
    const w = await startHearth({ name: `dr-${host}`, env: { ...env, HEARTH_HOST: host, HEARTH_ROLES: 'worker' } });
    workers.set(host, w);
    return w;
  };
  const stopWorker = async (host: string): Promise<void> => {
    await workers.get(host)?.stop();
    workers.delete(host);
  };
  const call = (method: string, path: string, body?: unknown) => new ReplicationAdmin(api.apiUrl).call(method, path, body);
  const cluster = () => new ReplicationAdmin(api.apiUrl).cluster(CLUSTER);

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    root = await mkdtemp(join(tmpdir(), 'hearth-dr-'));
    primary = join(root, 'primary');
    target = join(root, 'dr1');
    await mkdir(primary);
    await mkdir(target);
    env = memberEnv(etcd, amqp, 'dr', join(root, 'unused-journal'), {
      HEARTH_DRIVER_NAME: 'file',
      HEARTH_DRIVER_FILE_DIR: primary,
      HEARTH_DRIVER_REPLICATION_TARGETS: `dr1:${target}`,
      HEARTH_BACKEND_HEALTH_CHECK_INTERVAL_MS: '1000',
      HEARTH_BACKEND_HEALTH_PROBE_TIMEOUT_MS: '1000',
    });
    api = await startHearth({ name: 'dr-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    client = new ClusterClient(api);
    for (const host of ['a', 'b', 'c']) await startWorker(host);
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), ...[...workers.values()].map((w) => w.stop())]);
    await amqp?.close();
    await etcd?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a replicating cluster shows enabled with its target; volumes are on the primary and the target', async () => {
    expect(await cluster()).toMatchObject({ replication_status: 'enabled', active_backend_id: null, frozen: false });
    const id = await client.createVolume(1);
    await client.waitStatus('volume', id, 'available');
    expect(await exists(join(primary, `volume-${id}`))).toBe(true);
    expect(await exists(join(target, `volume-${id}`))).toBe(true);
  });

  it('fails over with a member stopped; the member, started again, serves the target from its first job (on disk); failback brings the data home', async () => {
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
