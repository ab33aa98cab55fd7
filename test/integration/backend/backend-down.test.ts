import { mkdir, mkdtemp, rm, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cinder, parseCinderTable } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

/**
 * Two members on one shared directory (the real file driver), one of which reaches it through a
 * path that an "unmount" turns into an empty directory: its backend check finds no cluster
 * marker, os-services 3.49 shows its backend down, every new job goes to the other member, and
 * when the share is back it is up again — all without leaving the cluster.
 */
describe('a member whose share is unmounted: backend down, no jobs, back by itself', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let root: string;
  let link: string;
  let share: string;
  let a: HearthProcess;
  let b: HearthProcess;

  const backendStates = async (): Promise<Record<string, string>> => {
    const rows = parseCinderTable(await cinder(a.apiUrl, '--os-volume-api-version', '3.49', 'service-list'));
    return Object.fromEntries(rows.map((r) => [r.Host ?? '', r['Backend State'] ?? '']));
  };

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    root = await mkdtemp(join(tmpdir(), 'hearth-backend-down-'));
    share = join(root, 'share');
    link = join(root, 'b-mount');
    await mkdir(share);
    await symlink(share, link);
    const env = memberEnv(etcd, amqp, 'bd', join(root, 'unused-journal'), {
      HEARTH_DRIVER_NAME: 'file',
      HEARTH_BACKEND_HEALTH_CHECK_INTERVAL_MS: '1000',
      HEARTH_BACKEND_HEALTH_PROBE_TIMEOUT_MS: '1000',
      HEARTH_ROLES: 'api,worker',
    });
    a = await startHearth({ name: 'bd-a', env: { ...env, HEARTH_HOST: 'a', HEARTH_DRIVER_FILE_DIR: share } });
    b = await startHearth({ name: 'bd-b', env: { ...env, HEARTH_HOST: 'b', HEARTH_DRIVER_FILE_DIR: link } });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await amqp?.close();
    await etcd?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('both up at first, and exactly one member exports the census', async () => {
    expect(await backendStates()).toEqual({ 'a@be': 'up', 'b@be': 'up' });
    await waitFor(async () => (await new ClusterClient(a).metric('hearth_census_exporter')) + (await new ClusterClient(b).metric('hearth_census_exporter')) === 1, {
      timeoutMs: 15_000,
      what: 'one census exporter',
    });
  });

  it('the share unmounted under b: backend_state down, b stays joined and ready (it serves the API), new volumes all go to a', async () => {
    const empty = join(root, 'empty-mountpoint');
    await mkdir(empty);
    await unlink(link);
    await symlink(empty, link);
    await waitFor(async () => (await backendStates())['b@be'] === 'down', { timeoutMs: 15_000, intervalMs: 250, what: 'b backend down in service-list' });
    const services = parseCinderTable(await cinder(a.apiUrl, '--os-volume-api-version', '3.49', 'service-list'));
    expect(services.find((s) => s.Host === 'b@be')).toMatchObject({ State: 'up', Status: 'enabled', 'Backend State': 'down' });
    const ready = await fetch(`${b.opsUrl}/readyz?verbose`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toContain('[-]backend failed (not counted)');
    expect(await new ClusterClient(b).metric('hearth_backend_up')).toBe(0);
    expect(b.logs().some((l) => l.msg === 'the backend is down: taking no new jobs until a check passes' && String(l.reason).includes('marker'))).toBe(true);

    const client = new ClusterClient(a);
    const ids = await Promise.all(Array.from({ length: 6 }, () => client.createVolume(1)));
    for (const id of ids) await client.waitStatus('volume', id, 'available');
    const hosts = await Promise.all(ids.map(async (id) => (await client.record('volume', id))['os-vol-host-attr:host']));
    expect(new Set(hosts)).toEqual(new Set(['a@be']));
  });

  it('the share back: b is up again by itself and consumes', async () => {
    await unlink(link);
    await symlink(share, link);
    await waitFor(async () => (await backendStates())['b@be'] === 'up', { timeoutMs: 15_000, intervalMs: 250, what: 'b backend up again' });
    await waitFor(async () => b.logs().some((l) => l.msg === 'consuming jobs again: the backend is up'), { timeoutMs: 10_000, what: 'b consuming again' });
    expect(await (await fetch(`${b.opsUrl}/readyz?verbose`)).text()).toContain('[+]backend ok');
  });
});
