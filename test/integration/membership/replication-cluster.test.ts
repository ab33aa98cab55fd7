import { describe, expect, it } from 'vitest';
import { ClusterClient } from '../../support/orphans-cluster.js';
import { useReplicationCluster } from '../../support/replication-cluster.js';
import { waitFor } from '../../support/wait.js';

const FROZEN = 'Invalid input received: Modification operations are not allowed on frozen storage backends.';

/**
 * Freeze and thaw of a whole cluster on etcd and RabbitMQ with real processes: an API-only
 * process and workers (the fake driver). Every member is frozen, including one that joins while
 * the cluster is frozen; a job queued before the freeze waits in its queue and runs after the thaw.
 */
describe('freeze and thaw a cluster of several processes (etcd, RabbitMQ)', () => {
  const fixture = useReplicationCluster({ cluster: 'fz', name: 'freeze', workers: ['w1', 'w2'] });
  const { workers, call, startWorker, stopWorker } = fixture;

  const put = (action: string, body: unknown) => call('PUT', `/os-services/${action}`, body);
  const send = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${fixture.api.apiUrl}/v3/admin${path}`, {
      method,
      headers: { 'openstack-api-version': 'volume 3.27', 'x-auth-token': 'admin:admin', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.text()) || undefined };
  };

  it('frozen by one host: every member stops taking jobs, every management call is refused with nothing queued, reads work; thawed: they work', async () => {
    const { client } = fixture;
    const id = await client.createVolume(1);
    await client.waitStatus('volume', id, 'available');
    expect((await put('freeze', { host: 'w1@be' })).status).toBe(200);
    for (const w of workers.values()) {
      await waitFor(async () => (await new ClusterClient(w).metric('hearth_cluster_frozen', { cluster: 'fz@be' })) === 1, { what: `${w.name} sees the freeze` });
      await waitFor(async () => w.logs().some((l) => l.msg === 'stopped consuming until the backend can take work' && String(l.why).includes('frozen')), { what: `${w.name} holding` });
    }
    const fault = { status: 400, body: JSON.stringify({ badRequest: { code: 400, message: FROZEN } }) };
    expect(await send('POST', '/volumes', { volume: { size: 1 } })).toEqual(fault);
    expect(await send('DELETE', `/volumes/${id}`)).toEqual(fault);
    expect(await send('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: 2 } })).toEqual(fault);
    expect(await send('POST', '/snapshots', { snapshot: { volume_id: id } })).toEqual(fault);
    expect(await send('POST', '/attachments', { attachment: { volume_uuid: id, instance_uuid: null, connector: null } })).toEqual(fault);
    expect(await client.status('volume', id)).toBe('available');
    const shown = await send('GET', '/clusters/fz@be');
    expect(JSON.parse(shown.body ?? '{}')).toMatchObject({ cluster: { frozen: true, replication_status: 'not-capable' } });
    const services = JSON.parse((await send('GET', '/os-services')).body ?? '{}') as { services: Record<string, unknown>[] };
    expect(services.services.filter((s) => s.binary === 'cinder-volume').map((s) => s.frozen)).toEqual([true, true]);

    expect((await put('thaw', { cluster: 'fz@be' })).status).toBe(200);
    await client.extend(id, 2);
    await waitFor(async () => (await client.record('volume', id)).size === 2, { what: 'extended after the thaw' });
  });

  it('a job queued before the freeze waits, a member that joins while frozen is frozen too; after the thaw the job runs', async () => {
    const { client } = fixture;
    await Promise.all([...workers.keys()].map((host) => stopWorker(host)));
    // No worker: the create is recorded and queued, and nobody runs it yet.
    const id = await client.createVolume(1);
    expect(await client.status('volume', id)).toBe('creating');
    expect((await put('freeze', { cluster: 'fz@be' })).status).toBe(200);
    const late = await startWorker('w3');
    await waitFor(async () => late.logs().some((l) => l.msg === 'joined, but not consuming until the backend can take work' && String(l.why).includes('frozen')), { what: 'w3 holds' });
    expect(await client.status('volume', id)).toBe('creating');
    expect((await put('thaw', { host: 'w3@be' })).status).toBe(200);
    await client.waitStatus('volume', id, 'available');
  });
});
