import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal, started } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER_ID = 'rc@be';

/**
 * Cinder's init_host cleanup: a host killed mid-operation and started again cleans up what its
 * earlier incarnation left — before it consumes any message.
 */
describe('a restarted host first cleans up its earlier incarnation\'s operations', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-restart-')), 'journal.jsonl');
    env = memberEnv(etcd, amqp, 'rc', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '2000' });
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('kill -9 mid delete, extend and create; the same host restarted cleans them up, then takes new jobs', async () => {
    const api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    const client = new ClusterClient(api);
    const first = await startHearth({ name: 'w-1', env: { ...env, HEARTH_HOST: 'w', HEARTH_ROLES: 'worker' } });
    procs.push(first);
    const [volDel, volExt] = await Promise.all([client.createVolume(), client.createVolume()]);
    await client.waitStatus('volume', volDel, 'available');
    await client.waitStatus('volume', volExt, 'available');
    const volNew = await client.createVolume();
    await client.deleteVolume(volDel);
    await client.extend(volExt, 3);
    await Promise.all([
      started(journal, 'createVolume', `volume:${volNew}`),
      started(journal, 'deleteVolume', `volume:${volDel}`),
      started(journal, 'extendVolume', `volume:${volExt}`),
    ]);
    const killedAt = Date.now();
    await first.kill();

    // Restarted at once: it waits for its earlier run's lease to expire, joins as a new incarnation.
    const second = await startHearth({ name: 'w-2', env: { ...env, HEARTH_HOST: 'w', HEARTH_ROLES: 'worker' }, waitFor: 'live' });
    procs.push(second);
    // A job that arrives meanwhile must wait for the start-up cleanup.
    const later = await client.createVolume();
    await waitFor(async () => (await fetch(`${second.opsUrl}/readyz`)).status === 200, { timeoutMs: 20_000, what: 'the restarted host to be ready' });
    await client.waitStatus('volume', volDel, 'deleted');
    await client.waitStatus('volume', volExt, 'error_extending');
    await client.waitStatus('volume', volNew, 'error');
    await client.waitStatus('volume', later, 'available');
    expect(await etcd.client.getAll().prefix(new KeyLayout(etcd.prefix).ops()).keys()).toEqual([]);

    const logs = second.logs();
    const cleanupAt = logs.findIndex((l) => l.msg === 'start-up cleanup of earlier incarnations done');
    const consumingAt = logs.findIndex((l) => l.msg === 'consuming jobs');
    expect(cleanupAt).toBeGreaterThanOrEqual(0);
    expect(logs[cleanupAt]).toMatchObject({ found: 3, cleaned: 3, skipped: 0, errors: 0 });
    expect(consumingAt).toBeGreaterThan(cleanupAt);
    const takeovers = logs.filter((l) => l.msg === 'took over an orphaned operation');
    expect(takeovers.map((l) => l.id).sort()).toEqual([volDel, volExt, volNew].sort());
    expect(takeovers.every((l) => l.reason === 'restart')).toBe(true);
    const tookAt = Math.max(...takeovers.map((l) => Date.parse(String(l.time))));

    const wc = new ClusterClient(second);
    // Three ops of one dead incarnation: one failover.
    expect(await wc.metric('hearth_failovers_total', { cluster: CLUSTER_ID, reason: 'restart' })).toBe(1);
    const durations = await wc.metric('hearth_failover_duration_seconds_count');
    const meanMs = durations > 0 ? Math.round(((await wc.metric('hearth_failover_duration_seconds_sum')) / durations) * 1000) : undefined;
    console.log(`[orphans] restart of a killed host: kill -9 → takeover of its 3 ops ${tookAt - killedAt} ms; death → takeover ${meanMs ?? 'n/a'} ms (${durations} measured)`);

    // The journal: the delete ran again under the new process before the new job's call started.
    const { report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    const rerun = report.calls.find((c) => c.call === 'deleteVolume' && c.resource === `volume:${volDel}` && c.pid === second.pid);
    const laterCall = report.calls.find((c) => c.call === 'createVolume' && c.resource === `volume:${later}`);
    expect(rerun?.ok).toBe(true);
    expect(laterCall?.pid).toBe(second.pid);
    expect(laterCall!.start).toBeGreaterThanOrEqual(rerun!.end!);
  });
});
