import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cinder, parseCinderDict, parseCinderTable } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** The operator's view through python-cinderclient 9.x, unchanged, with noauth. */
describe('python-cinderclient against a single-node hearth serve', () => {
  let hearth: HearthProcess;
  const env = { HEARTH_CLUSTER: 'mycluster', HEARTH_BACKEND: 'lvm', HEARTH_HOST: 'node1', HEARTH_ZONE: 'az1' };
  beforeAll(async () => {
    hearth = await startHearth({ name: 'single', env });
  });
  afterAll(() => hearth.stop());

  it('cluster-list --detailed and service-list show the one member, itself, up', async () => {
    const [row, ...more] = parseCinderTable(await cinder(hearth.apiUrl, 'cluster-list', '--detailed'));
    expect(more).toEqual([]);
    expect(row).toMatchObject({ Name: 'mycluster@lvm', Binary: 'cinder-volume', State: 'up', Status: 'enabled', 'Num Hosts': '1', 'Num Down Hosts': '0', 'Disabled Reason': '-' });
    expect(row!['Last Heartbeat']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const services = parseCinderTable(await cinder(hearth.apiUrl, 'service-list'));
    expect(services).toEqual([
      expect.objectContaining({ Binary: 'cinder-volume', Host: 'node1@lvm', Zone: 'az1', Status: 'enabled', State: 'up', Cluster: 'mycluster@lvm', 'Backend State': 'up' }),
    ]);
  });

  it('cluster-disable --reason, cluster-show and cluster-enable; the setting survives a restart', async () => {
    const disabled = parseCinderDict(await cinder(hearth.apiUrl, 'cluster-disable', 'mycluster@lvm', '--reason', 'maintenance window'));
    expect(disabled).toMatchObject({ name: 'mycluster@lvm', status: 'disabled', disabled_reason: 'maintenance window', state: 'up' });
    const shown = parseCinderDict(await cinder(hearth.apiUrl, 'cluster-show', 'mycluster@lvm'));
    expect(shown).toMatchObject({ status: 'disabled', disabled_reason: 'maintenance window', num_hosts: '1', num_down_hosts: '0', frozen: 'False' });

    const dataDir = hearth.dataDir;
    await hearth.stop();
    hearth = await startHearth({ name: 'single-again', env: { ...env, HEARTH_DATA_DIR: dataDir } });
    const after = parseCinderDict(await cinder(hearth.apiUrl, 'cluster-show', 'mycluster@lvm'));
    expect(after).toMatchObject({ status: 'disabled', disabled_reason: 'maintenance window', state: 'up' });

    const enabled = parseCinderDict(await cinder(hearth.apiUrl, 'cluster-enable', 'mycluster@lvm'));
    expect(enabled).toMatchObject({ status: 'enabled', disabled_reason: 'None' });
  });

  it('a disabled cluster is given no new volumes; its existing volumes stay usable; enabling it again takes creates', async () => {
    const existing = parseCinderDict(await cinder(hearth.apiUrl, 'create', '--name', 'before', '1'));
    await cinder(hearth.apiUrl, 'cluster-disable', 'mycluster@lvm', '--reason', 'full');
    await expect(cinder(hearth.apiUrl, 'create', '--name', 'refused', '1')).rejects.toThrow(
      /Cluster mycluster@lvm does not accept new volumes: it is disabled \(full\) \(HTTP 400\)/,
    );
    // Work on the volumes it already has goes on: the existing volume is still there to act on.
    const shown = parseCinderDict(await cinder(hearth.apiUrl, 'show', existing.id!));
    expect(shown).toMatchObject({ name: 'before' });
    const names = parseCinderTable(await cinder(hearth.apiUrl, 'list')).map((v) => v.Name);
    expect(names).toEqual(['before']);
    await cinder(hearth.apiUrl, 'cluster-enable', 'mycluster@lvm');
    expect(parseCinderDict(await cinder(hearth.apiUrl, 'create', '--name', 'after', '1'))).toMatchObject({ name: 'after' });
  });

  it('hearth cluster / hearth service (the CLI as a real process) talk to the API named by api.listen', async () => {
    const listen = hearth.apiUrl.replace('http://', '');
    const cli = async (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/hearth-main.ts'), ...args], {
        cwd: REPO,
        env: { PATH: process.env.PATH, HEARTH_API_LISTEN: listen },
      }).catch((e: unknown) => e as { code: number; stdout: string; stderr: string });
    const list = (await cli('cluster', 'list', '--detailed', '--json')) as { stdout: string };
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: 'mycluster@lvm', state: 'up', num_hosts: 1 })]);
    const services = (await cli('service', 'list')) as { stdout: string };
    expect(services.stdout).toMatch(/node1@lvm\s*│\s*az1\s*│\s*enabled\s*│\s*up/);
    const missing = (await cli('cluster', 'show', 'nope@lvm')) as { code: number; stderr: string };
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Cluster nope@lvm could not be found.');
    const usage = (await cli('cluster', 'list', '--disabled', 'sometimes')) as { code: number };
    expect(usage.code).toBe(2);
  });

  it('an unknown cluster is the client\'s "not found" error', async () => {
    await expect(cinder(hearth.apiUrl, 'cluster-show', 'nope@lvm')).rejects.toThrow(/Cluster nope@lvm could not be found\. \(HTTP 404\)/);
  });

  it('refuses to start when its records name another host of the same cluster (data dir reused)', async () => {
    const dataDir = hearth.dataDir;
    await hearth.stop();
    const other = await startHearth({ name: 'renamed', env: { ...env, HEARTH_HOST: 'node2', HEARTH_DATA_DIR: dataDir }, waitFor: 'none' });
    const exit = await other.process.waitForExit();
    expect(exit.code).toBe(1);
    expect(other.output()).toContain('NOT_DISTRIBUTED');
    expect(other.output()).toContain('cluster mycluster@lvm already has host node1@lvm');
    hearth = await startHearth({ name: 'single-third', env: { ...env, HEARTH_DATA_DIR: dataDir } });
  });
});

describe('python-cinderclient against a cluster of hearth serve processes on etcd', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  const procs: HearthProcess[] = [];
  let api: HearthProcess;

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    const base = {
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_CLUSTER: 'ceph',
      HEARTH_BACKEND: 'rbd',
    };
    // node1 only works; node2 works and serves the API too.
    const workers = await Promise.all([
      startHearth({ name: 'worker-node1', env: { ...base, HEARTH_HOST: 'node1', HEARTH_ROLES: 'worker' } }),
      startHearth({ name: 'worker-node2', env: { ...base, HEARTH_HOST: 'node2', HEARTH_ROLES: 'api,worker' } }),
    ]);
    procs.push(...workers);
    // An API-only process reads etcd directly; it has no session and is no member.
    api = await startHearth({ name: 'api', env: { ...base, HEARTH_HOST: 'api1', HEARTH_ROLES: 'api' } });
    procs.push(api);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('cluster-list --detailed shows one cluster with both members up; service-list lists both', async () => {
    const clusters = parseCinderTable(await cinder(api.apiUrl, 'cluster-list', '--detailed'));
    expect(clusters).toEqual([expect.objectContaining({ Name: 'ceph@rbd', State: 'up', Status: 'enabled', 'Num Hosts': '2', 'Num Down Hosts': '0' })]);
    const services = parseCinderTable(await cinder(api.apiUrl, 'service-list'));
    expect(services.map((s) => `${s.Host} ${s.State} ${s.Cluster}`).sort()).toEqual(['node1@rbd up ceph@rbd', 'node2@rbd up ceph@rbd']);
    const filtered = parseCinderTable(await cinder(api.apiUrl, 'service-list', '--host', 'node2'));
    expect(filtered.map((s) => s.Host)).toEqual(['node2@rbd']);
  });

  it('cluster-disable is seen by every API process; cluster-enable undoes it', async () => {
    await cinder(api.apiUrl, 'cluster-disable', 'ceph@rbd', '--reason', 'drain');
    // The disabled flag lives in etcd: a different process's API reports it.
    const other = await fetch(`${procs[1]!.apiUrl}/v3/admin/clusters/ceph@rbd`, { headers: { 'OpenStack-API-Version': 'volume 3.7' } });
    expect(((await other.json()) as { cluster: Record<string, unknown> }).cluster).toMatchObject({ status: 'disabled', disabled_reason: 'drain' });
    const list = parseCinderTable(await cinder(api.apiUrl, 'cluster-list', '--disabled', 'true'));
    expect(list.map((c) => c.Name)).toEqual(['ceph@rbd']);
    const enabled = parseCinderDict(await cinder(api.apiUrl, 'cluster-enable', 'ceph@rbd'));
    expect(enabled).toMatchObject({ status: 'enabled' });
  });

  it('workers report membership metrics and are ready only while joined', async () => {
    const worker = procs[0]!;
    expect((await fetch(`${worker.opsUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${worker.opsUrl}/metrics`)).text();
    expect(metrics).toContain('hearth_cluster_members{cluster="ceph@rbd",state="expected"} 2');
    expect(metrics).toContain('hearth_cluster_members{cluster="ceph@rbd",state="alive"} 2');
    expect(metrics).toMatch(/hearth_membership_lease_last_renewal_timestamp_seconds \d/);
  });
});
