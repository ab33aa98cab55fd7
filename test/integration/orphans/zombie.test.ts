import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

const LEASE_TTL_MS = 3_000;
const CLUSTER_ID = 'zc@be';

/**
 * The zombie: a worker frozen (SIGSTOP) in the middle of its driver calls past its lease TTL,
 * whose work a live member cleans up meanwhile, then resumed (SIGCONT). It must not write
 * anything: its late final transitions fail on the fence and it stops the ops.
 */
describe('a worker paused past its lease and resumed after its work was cleaned up (the zombie)', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-zombie-')), 'journal.jsonl');
    env = memberEnv(etcd, amqp, 'zc', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '4000', HEARTH_ORPHANS_SWEEP_INTERVAL_MS: '1000' });
  });
  afterAll(async () => {
    for (const p of procs) p.resume();
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('writes nothing once its work was cleaned: its final transitions are fenced off and the records keep the cleaner\'s outcome', async () => {
    const api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    const client = new ClusterClient(api);
    // A frozen process keeps its broker connection until RabbitMQ misses two heartbeats; the
    // cleanup request (on the cluster queue) may be handed to it meanwhile. A 1 s heartbeat keeps
    // that delay short here (see docs/orphans.md, failure semantics).
    const zombie = await startWorker(env, 'zombie', { HEARTH_AMQP_HEARTBEAT_SECONDS: '1' });
    procs.push(zombie);
    const zc = new ClusterClient(zombie);
    const volExt = await client.createVolume();
    await client.waitStatus('volume', volExt, 'available');
    const volNew = await client.createVolume();
    await client.extend(volExt, 2);
    await started(journal, 'createVolume', `volume:${volNew}`);
    await started(journal, 'extendVolume', `volume:${volExt}`);

    zombie.pause();
    const pausedAt = Date.now();
    await waitFor(async () => (await client.orphans()).filter((o) => o.owner_host === 'zombie@be').length === 2, {
      timeoutMs: LEASE_TTL_MS + 5_000,
      intervalMs: 50,
      what: 'the paused worker\'s two ops to be orphans',
    });
    console.log(`[orphans] SIGSTOP → the zombie's ops are orphans after ${Date.now() - pausedAt} ms (lease TTL ${LEASE_TTL_MS} ms)`);

    const rescuer = await startWorker(env, 'rescuer');
    procs.push(rescuer);
    const cleanup = await client.workCleanup({ cluster_name: CLUSTER_ID });
    expect(cleanup.status).toBe(202);
    expect(cleanup.body).toMatchObject({ cleaning: [expect.objectContaining({ host: 'zombie@be' })], unavailable: [] });
    await client.waitStatus('volume', volExt, 'error_extending');
    await client.waitStatus('volume', volNew, 'error');
    expect(await etcd.client.getAll().prefix(new KeyLayout(etcd.prefix).ops()).keys()).toEqual([]);

    const resumedAt = Date.now();
    zombie.resume();
    // Its runs end fenced: nothing was written for them.
    await waitFor(
      async () =>
        (await zc.metric('hearth_operations_total', { operation: 'extend_volume', result: 'fenced' })) === 1 &&
        (await zc.metric('hearth_operations_total', { operation: 'create_volume', result: 'fenced' })) === 1,
      { timeoutMs: 15_000, intervalMs: 100, what: 'the zombie\'s runs to end fenced' },
    );
    console.log(`[orphans] SIGCONT → the zombie's two runs ended fenced after ${Date.now() - resumedAt} ms`);
    // Only the preparing create of the volume to extend ever succeeded there.
    expect(await zc.metric('hearth_operations_total', { result: 'success' })).toBe(1);
    expect(await zc.metric('hearth_operations_total', { operation: 'extend_volume', result: 'success' })).toBe(0);
    expect(await zc.metric('hearth_operations_total', { result: 'error' })).toBe(0);

    // The records keep the cleaner's outcome, also once the zombie has had every chance to write.
    await waitFor(async () => (await fetch(`${zombie.opsUrl}/readyz`)).status === 200, { timeoutMs: 20_000, what: 'the zombie to rejoin as a new incarnation' });
    for (const [id, status] of [[volExt, 'error_extending'], [volNew, 'error']] as const) {
      const record = await client.record('volume', id);
      expect(record.status).toBe(status);
    }
    expect((await client.record('volume', volExt)).size).toBe(1);
    expect(await etcd.client.getAll().prefix(new KeyLayout(etcd.prefix).ops()).keys()).toEqual([]);
    const logs = zombie.logs();
    const ended = logs.filter((l) => l.msg === 'operation ended');
    expect(ended.map((l) => l.result).sort()).toEqual(['fenced', 'fenced', 'success']);
    // Back as a new incarnation, its start-up cleanup found nothing of its earlier one left.
    const startup = logs.filter((l) => l.msg === 'start-up cleanup of earlier incarnations done');
    expect(startup.at(-1)).toMatchObject({ found: 0, reason: 'session-lost' });
    const rescuerTook = rescuer.logs().filter((l) => l.msg === 'took over an orphaned operation').map((l) => l.id);
    expect(rescuerTook.sort()).toEqual([volExt, volNew].sort());

    // The journal: the zombie's calls, no second call on either volume, nothing ran twice.
    const { report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    const onExt = report.calls.filter((c) => c.resource === `volume:${volExt}`);
    expect(onExt.map((c) => [c.call, c.member])).toEqual([
      ['createVolume', 'zombie@be'],
      ['extendVolume', 'zombie@be'],
    ]);
    expect(report.calls.filter((c) => c.resource === `volume:${volNew}`).map((c) => c.member)).toEqual(['zombie@be']);
    await Promise.all([zombie.kill(), rescuer.stop()]);
  });

  it('with nobody to clean up meanwhile, the resumed worker takes its own earlier incarnation\'s work over when it rejoins', async () => {
    const api = procs[0] as HearthProcess;
    const client = new ClusterClient(api);
    const lone = await startWorker(env, 'lone', { HEARTH_AMQP_HEARTBEAT_SECONDS: '1' });
    procs.push(lone);
    const vol = await client.createVolume();
    await client.waitStatus('volume', vol, 'available');
    await client.extend(vol, 2);
    await started(journal, 'extendVolume', `volume:${vol}`);
    lone.pause();
    await waitFor(async () => (await client.orphans()).some((o) => o.id === vol && o.owner_host === 'lone@be'), { timeoutMs: LEASE_TTL_MS + 5_000, intervalMs: 50, what: 'the orphan' });
    const resumedAt = Date.now();
    lone.resume();
    await client.waitStatus('volume', vol, 'error_extending');
    console.log(`[orphans] SIGCONT with no other member: its new incarnation took its own orphan over ${Date.now() - resumedAt} ms later`);
    const lc = new ClusterClient(lone);
    expect(await lc.metric('hearth_operations_total', { operation: 'extend_volume', result: 'fenced' })).toBe(1);
    expect(await lc.metric('hearth_failovers_total', { cluster: CLUSTER_ID, reason: 'restart' })).toBe(1);
    const startup = lone.logs().filter((l) => l.msg === 'start-up cleanup of earlier incarnations done');
    expect(startup.map((l) => [l.reason, l.found, l.cleaned])).toEqual([
      ['start', 0, 0],
      ['session-lost', 1, 1],
    ]);
    expect((await client.record('volume', vol)).size).toBe(1);
    expect(await etcd.client.getAll().prefix(new KeyLayout(etcd.prefix).ops()).keys()).toEqual([]);
  });
});
