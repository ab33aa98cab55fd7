// `DELETE /hearth/v1/services/{binary}/{host}` and `hearth service remove`, with real etcd,
// RabbitMQ and `hearth serve` processes.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) }, {});
  return { code, out, err };
}

describe('removing a down service\'s record (cinder-manage service remove)', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let env: Record<string, string>;
  let journal: string;
  let api: HearthProcess;
  let client: ClusterClient;
  const procs: HearthProcess[] = [];

  const remove = async (binary: string, host: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${api.apiUrl}/hearth/v1/services/${encodeURIComponent(binary)}/${encodeURIComponent(host)}`, { method: 'DELETE' });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const hosts = async (): Promise<string[]> => {
    const res = (await (await fetch(`${api.apiUrl}/v3/admin/os-services`)).json()) as { services: { host: string }[] };
    return res.services.map((s) => s.host).sort();
  };

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-remove-')), 'journal.jsonl');
    env = memberEnv(etcd, amqp, 'sr', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '3000' });
    api = await startHearth({ name: 'remove-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    client = new ClusterClient(api);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('refuses while the host is alive (409) and while it owns unfinished operations (409); removes it once cleaned; then 404', async () => {
    const victim = await startWorker(env, 'victim');
    procs.push(victim);
    const alive = await remove('cinder-volume', 'victim@be');
    expect(alive.status).toBe(409);
    expect(alive.body).toEqual({ conflictingRequest: { code: 409, message: expect.stringContaining('is alive') as string } });

    // Killed in the middle of a create: down, and its op is an orphan it still owns.
    const vol = await client.createVolume();
    await started(journal, 'createVolume', `volume:${vol}`);
    await victim.kill();
    await waitFor(async () => (await client.orphans()).some((o) => o.id === vol), { timeoutMs: 10_000, what: 'the orphan' });
    const owns = await remove('cinder-volume', 'victim@be');
    expect(owns.status).toBe(409);
    expect(String((owns.body.conflictingRequest as { message: string }).message)).toContain(`still owns 1 unfinished operation(s): volume ${vol} (create_volume)`);
    expect(await hosts()).toEqual(['victim@be']);

    // A live member cleans it up; then the record can go.
    const rescuer = await startWorker(env, 'rescuer');
    procs.push(rescuer);
    expect((await cli('work-cleanup', '--cluster', 'sr@be', '--host', 'victim@be', '--url', api.apiUrl)).code).toBe(0);
    await client.waitStatus('volume', vol, 'error');
    expect(await etcd.client.getAll().prefix(new KeyLayout(etcd.prefix).ops()).keys()).toEqual([]);
    const removed = await remove('cinder-volume', 'victim@be');
    expect(removed).toEqual({ status: 200, body: { service: { binary: 'cinder-volume', host: 'victim@be', cluster: 'sr@be' } } });
    expect(await hosts()).toEqual(['rescuer@be']);
    expect(await remove('cinder-volume', 'victim@be')).toEqual({ status: 404, body: { itemNotFound: { code: 404, message: 'Service cinder-volume on host victim@be could not be found.' } } });
    expect(api.logs().some((l) => l.msg === 'service record removed' && l.host === 'victim@be')).toBe(true);
  });

  it('hearth service remove: exit 1 with the API\'s reason while alive, exit 2 on bad input, exit 0 once the host stopped', async () => {
    const url = ['--url', api.apiUrl];
    const worker = await startWorker(env, 'leaving');
    procs.push(worker);
    const refused = await cli('service', 'remove', 'cinder-volume', 'leaving@be', ...url);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('Service cinder-volume on host leaving@be is alive');
    const bad = await cli('service', 'remove', 'cinder-volume', 'leaving', ...url);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('full host id');
    expect((await cli('service', 'remove', 'cinder-volume', ...url)).code).toBe(2);

    await worker.stop();
    const done = await cli('service', 'remove', 'cinder-volume', 'leaving@be', ...url);
    expect(done).toMatchObject({ code: 0, out: 'Service cinder-volume on host leaving@be removed.\n' });
    expect(await hosts()).not.toContain('leaving@be');
    const unknown = await cli('service', 'remove', 'cinder-volume', 'leaving@be', ...url);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('could not be found');
    // A host that comes back later simply joins again with a fresh record.
    const back = await startWorker(env, 'leaving');
    procs.push(back);
    expect(await hosts()).toContain('leaving@be');
  });
});
