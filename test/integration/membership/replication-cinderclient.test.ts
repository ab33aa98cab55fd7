import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cinder, parseCinderDict, parseCinderTable } from '../../support/cinder-cli.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { waitFor } from '../../support/wait.js';

const FROZEN = /Invalid input received: Modification operations are not allowed on frozen storage backends\. \(HTTP 400\)/;

/** Freeze, thaw and failover as an operator runs them: python-cinderclient's host forms, and the 3.26 cluster form over HTTP. */
describe('freeze-host, thaw-host and failover-host through python-cinderclient against hearth serve', () => {
  let hearth: HearthProcess;
  const env = { HEARTH_CLUSTER: 'mycluster', HEARTH_BACKEND: 'lvm', HEARTH_HOST: 'node1', HEARTH_ZONE: 'az1' };
  beforeAll(async () => {
    hearth = await startHearth({ name: 'replication', env });
  });
  afterAll(() => hearth.stop());

  const put = (action: string, body: unknown, version = '3.26') =>
    fetch(`${hearth.apiUrl}/v3/admin/os-services/${action}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'openstack-api-version': `volume ${version}`, 'x-auth-token': 'admin:admin' },
      body: JSON.stringify(body),
    });

  it('freeze-host freezes the whole cluster: every management call is refused before it is queued, reads work; thaw-host undoes it', async () => {
    const kept = parseCinderDict(await cinder(hearth.apiUrl, 'create', '--name', 'kept', '1'));
    await waitFor(async () => parseCinderDict(await cinder(hearth.apiUrl, 'show', kept.id!)).status === 'available', { what: 'kept available' });
    await cinder(hearth.apiUrl, 'freeze-host', 'node1@lvm');
    expect(parseCinderDict(await cinder(hearth.apiUrl, '--os-volume-api-version', '3.26', 'cluster-show', 'mycluster@lvm'))).toMatchObject({ frozen: 'True', replication_status: 'not-capable' });
    const services = parseCinderTable(await cinder(hearth.apiUrl, '--os-volume-api-version', '3.26', 'service-list', '--withreplication'));
    expect(services).toEqual([expect.objectContaining({ Host: 'node1@lvm', Frozen: 'True', 'Replication Status': 'not-capable' })]);

    await expect(cinder(hearth.apiUrl, 'create', '--name', 'refused', '1')).rejects.toThrow(FROZEN);
    await expect(cinder(hearth.apiUrl, 'delete', kept.id!)).rejects.toThrow(FROZEN);
    await expect(cinder(hearth.apiUrl, 'extend', kept.id!, '2')).rejects.toThrow(FROZEN);
    await expect(cinder(hearth.apiUrl, 'snapshot-create', kept.id!)).rejects.toThrow(FROZEN);
    // Reads still work, and nothing was recorded.
    expect(parseCinderTable(await cinder(hearth.apiUrl, 'list')).map((v) => v.Name)).toEqual(['kept']);
    expect(parseCinderDict(await cinder(hearth.apiUrl, 'show', kept.id!))).toMatchObject({ status: 'available', size: '1' });
    expect(parseCinderTable(await cinder(hearth.apiUrl, 'snapshot-list'))).toEqual([]);
    // A second freeze names the condition that failed.
    await expect(cinder(hearth.apiUrl, 'freeze-host', 'node1@lvm')).rejects.toThrow(/frozen in mycluster@lvm must be False to failover\. \(HTTP 400\)/);

    await cinder(hearth.apiUrl, 'thaw-host', 'node1@lvm');
    await cinder(hearth.apiUrl, 'extend', kept.id!, '2');
    await waitFor(async () => parseCinderDict(await cinder(hearth.apiUrl, 'show', kept.id!)).size === '2', { what: 'extended after the thaw' });
    await cinder(hearth.apiUrl, 'delete', kept.id!);
  });

  it('failover-host of a backend that does not replicate is refused on its replication_status, and an unknown host is not found; nothing written', async () => {
    await expect(cinder(hearth.apiUrl, 'failover-host', 'node1@lvm', '--backend_id', 'dr1')).rejects.toThrow(
      /replication_status in mycluster@lvm must be \['enabled', 'failed-over'\] and must be up to failover\. \(HTTP 400\)/,
    );
    await expect(cinder(hearth.apiUrl, 'freeze-host', 'nohost@lvm')).rejects.toThrow(/No service found with host=nohost@lvm \(HTTP 400\)/);
    expect(parseCinderDict(await cinder(hearth.apiUrl, '--os-volume-api-version', '3.26', 'cluster-show', 'mycluster@lvm'))).toMatchObject({ frozen: 'False', replication_status: 'not-capable', status: 'enabled' });
  });

  it('the 3.26 cluster form over HTTP: freeze and thaw by cluster; both host and cluster, or neither, is refused', async () => {
    const both = await put('freeze', { host: 'node1@lvm', cluster: 'mycluster@lvm' });
    expect(both.status).toBe(400);
    expect(await both.json()).toEqual({ badRequest: { code: 400, message: 'Invalid input received: One and only one of cluster and host must be set.' } });
    const freeze = await put('freeze', { cluster: 'mycluster@lvm' });
    expect(freeze.status).toBe(200);
    await expect(cinder(hearth.apiUrl, 'create', '1')).rejects.toThrow(FROZEN);
    const failover = await put('failover', { cluster: 'mycluster@lvm', backend_id: 'dr1' });
    expect(failover.status).toBe(400);
    expect((await put('thaw', { cluster: 'mycluster@lvm' })).status).toBe(200);
    const missing = await put('thaw', { cluster: 'nope@lvm' });
    expect(await missing.json()).toEqual({ badRequest: { code: 400, message: 'No service found with cluster=nope@lvm' } });
  });
});
