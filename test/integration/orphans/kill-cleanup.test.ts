import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { cinder, parseCinderTable } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

const LEASE_TTL_MS = 3_000;
const LATENCY_MS = '3000';
const CLUSTER = 'kc';
const CLUSTER_ID = 'kc@be';
const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** The five operations a worker can die in, each on its own resource. */
interface InFlight {
  readonly volNew: string;
  readonly volDel: string;
  readonly volExt: string;
  readonly snapNew: string;
  readonly snapDel: string;
}

/**
 * kill -9 of a worker in the middle of every kind of operation, with real etcd, RabbitMQ and
 * `hearth serve` processes and the fake driver (latency, shared journal). First an operator
 * cleans up with python-cinderclient's `work-cleanup`; then, separately, members clean up by
 * themselves (`orphans.autoCleanup`).
 */
describe('a worker killed mid-operation: its orphans are found within a lease and cleaned up', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  let api: HearthProcess;
  let client: ClusterClient;
  const procs: HearthProcess[] = [];

  const startMember = async (host: string, over: Record<string, string> = {}): Promise<HearthProcess> => {
    const p = await startWorker(env, host, over);
    procs.push(p);
    return p;
  };

  /** Volumes and a snapshot in final statuses, made by `victim`, then one op of each kind caught mid-call on it. */
  const catchInFlight = async (victim: string, beforeOps?: () => Promise<void>): Promise<InFlight> => {
    const [volDel, volExt, volSrc] = await Promise.all([client.createVolume(), client.createVolume(), client.createVolume()]);
    for (const id of [volDel, volExt, volSrc]) await client.waitStatus('volume', id, 'available');
    const snapDel = await client.createSnapshot(volSrc);
    await client.waitStatus('snapshot', snapDel, 'available');
    await beforeOps?.();
    const volNew = await client.createVolume();
    await client.deleteVolume(volDel);
    await client.extend(volExt, 2);
    const snapNew = await client.createSnapshot(volSrc);
    await client.deleteSnapshot(snapDel);
    const calls = await Promise.all([
      started(journal, 'createVolume', `volume:${volNew}`),
      started(journal, 'deleteVolume', `volume:${volDel}`),
      started(journal, 'extendVolume', `volume:${volExt}`),
      started(journal, 'createSnapshot', `snapshot:${snapNew}`),
      started(journal, 'deleteSnapshot', `snapshot:${snapDel}`),
    ]);
    expect(calls.map((c) => c.member)).toEqual(Array(5).fill(`${victim}@be`));
    return { volNew, volDel, volExt, snapNew, snapDel };
  };

  /** Kills `victim` and measures when its five orphans show in the API view and in the metric. */
  const killAndDetect = async (victim: HearthProcess, host: string, ids: InFlight): Promise<{ killedAt: number }> => {
    const killedAt = Date.now();
    await victim.kill();
    // How soon is measured (printed here, and by make bench's failover suite); what is asserted
    // is that both views show the five orphans, as orphans of the dead owner.
    const [viewAt, metricAt] = await Promise.all([
      waitFor(async () => (await client.orphans()).filter((o) => o.owner_host === `${host}@be`).length === 5 && Date.now(), {
        timeoutMs: LEASE_TTL_MS + 30_000,
        intervalMs: 20,
        what: 'five orphans in the API view',
      }),
      waitFor(async () => (await client.metric('hearth_orphaned_operations', { cluster: CLUSTER_ID })) === 5 && Date.now(), {
        timeoutMs: LEASE_TTL_MS + 30_000,
        intervalMs: 20,
        what: 'hearth_orphaned_operations = 5',
      }),
    ]);
    console.log(`[orphans] kill -9 ${host} → orphans in the API view after ${viewAt - killedAt} ms, in hearth_orphaned_operations after ${metricAt - killedAt} ms (lease TTL ${LEASE_TTL_MS} ms)`);
    const view = await client.orphans();
    const byId = new Map(view.map((o) => [o.id, o]));
    expect(byId.get(ids.volNew)).toMatchObject({ type: 'volume', kind: 'create_volume', status: 'creating', cluster: CLUSTER_ID, reason: 'owner-gone' });
    expect(byId.get(ids.volDel)).toMatchObject({ kind: 'delete_volume', status: 'deleting' });
    expect(byId.get(ids.volExt)).toMatchObject({ kind: 'extend_volume', status: 'extending' });
    expect(byId.get(ids.snapNew)).toMatchObject({ type: 'snapshot', kind: 'create_snapshot', status: 'creating' });
    expect(byId.get(ids.snapDel)).toMatchObject({ type: 'snapshot', kind: 'delete_snapshot', status: 'deleting' });
    expect(view.every((o) => String(o.owner_incarnation).startsWith(`${host}@be:`))).toBe(true);
    expect(api.logs().some((l) => l.msg === 'orphaned operation found' && l.id === ids.volDel && l.ownerHost === `${host}@be`)).toBe(true);
    return { killedAt };
  };

  /** Every resource in the status the cleanup table gives it; the journal clean; no op left. */
  const expectCleaned = async (ids: InFlight, victim: string): Promise<void> => {
    await client.waitStatus('volume', ids.volNew, 'error');
    await client.waitStatus('volume', ids.volDel, 'deleted');
    await client.waitStatus('volume', ids.volExt, 'error_extending');
    await client.waitStatus('snapshot', ids.snapNew, 'error');
    await client.waitStatus('snapshot', ids.snapDel, 'deleted');
    expect((await client.record('volume', ids.volExt)).size).toBe(1);
    const { entries, report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    expect(report.malformed).toBe(0);
    // The victim's calls were cut off; the deletes were run again by a live member.
    const mine = (r: string) => report.calls.filter((c) => c.resource === r);
    expect(report.unfinished.filter((c) => c.member === `${victim}@be`)).toHaveLength(5);
    expect(mine(`volume:${ids.volDel}`).filter((c) => c.call === 'deleteVolume' && c.ok === true && c.member !== `${victim}@be`)).toHaveLength(1);
    expect(mine(`snapshot:${ids.snapDel}`).filter((c) => c.call === 'deleteSnapshot' && c.ok === true)).toHaveLength(1);
    // No create succeeded, so none twice: an orphaned create is marked error, not re-run.
    expect(entries.filter((e) => e.call === 'createVolume' && e.resource === `volume:${ids.volNew}` && e.event === 'end')).toEqual([]);
    const ops = await etcd.client.getAll().prefix(new KeyLayout(etcd.prefix).ops()).keys();
    expect(ops).toEqual([]);
  };

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-orphans-')), 'journal.jsonl');
    env = memberEnv(etcd, amqp, CLUSTER, journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: LATENCY_MS, HEARTH_ORPHANS_SWEEP_INTERVAL_MS: '1000' });
    api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    client = new ClusterClient(api);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('kill -9 mid create, delete, extend, snapshot create and delete: seen in the API view and the metric, then cinderclient work-cleanup takes every orphan over', async () => {
    const victim = await startMember('victim');
    const ids = await catchInFlight('victim');
    // The rescuer joins after the victim claimed everything, so it takes no job of its own here.
    const rescuer = await startMember('rescuer');
    const { killedAt } = await killAndDetect(victim, 'victim', ids);

    const services = (await (await fetch(`${api.apiUrl}/v3/admin/os-services`)).json()) as { services: { id: number; host: string }[] };
    const victimId = services.services.find((s) => s.host === 'victim@be')?.id;
    const out = await cinder(api.apiUrl, 'work-cleanup', '--cluster', CLUSTER_ID);
    expect(out).toContain('Following services will be cleaned:');
    expect(out).not.toContain('There are no alternative nodes');
    expect(parseCinderTable(out)).toEqual([{ ID: String(victimId), 'Cluster Name': CLUSTER_ID, Host: 'victim@be', Binary: 'cinder-volume' }]);

    await expectCleaned(ids, 'victim');
    const takeovers = rescuer.logs().filter((l) => l.msg === 'took over an orphaned operation');
    expect(takeovers).toHaveLength(5);
    expect(takeovers.every((l) => l.reason === 'cleanup' && l.ownerIncarnation !== undefined)).toBe(true);
    const lastTakeover = Math.max(...takeovers.map((l) => Date.parse(String(l.time))));
    const rc = new ClusterClient(rescuer);
    // One dead incarnation taken over: one failover (and one duration), not one per op.
    expect(await rc.metric('hearth_failovers_total', { cluster: CLUSTER_ID, reason: 'cleanup' })).toBe(1);
    expect(await rc.metric('hearth_orphan_cleanups_total', { result: 'cleaned' })).toBe(5);
    expect(await rc.metric('hearth_failover_duration_seconds_count')).toBe(1);
    expect(takeovers.filter((l) => l.failover === true)).toHaveLength(1);
    const meanFailoverS = await rc.metric('hearth_failover_duration_seconds_sum');
    console.log(`[orphans] work-cleanup: kill -9 → last takeover ${lastTakeover - killedAt} ms (operator-driven); death → takeover ${Math.round(meanFailoverS * 1000)} ms on average (hearth_failover_duration_seconds)`);
    await waitFor(async () => (await client.orphans()).length === 0 && (await client.metric('hearth_orphaned_operations', { cluster: CLUSTER_ID })) === 0, {
      timeoutMs: 5_000,
      what: 'the orphans to be gone from the view and the gauge',
    });
    await rescuer.stop();
  });

  it('with orphans.autoCleanup two live members race for every orphan: each is taken over exactly once, without an operator', async () => {
    // A member left running by a failed test before would take jobs meant for the victim.
    await Promise.all(procs.filter((p) => p !== api && p.process.alive).map((p) => p.stop()));
    // The victim's calls must outlast the rescuers' start on a loaded machine: they are still in
    // flight at the kill. So a member with the usual latency prepares the volumes, and the victim,
    // whose calls take 30 s, gets the five operations to catch.
    const prep = await startMember('prep');
    let victim: HearthProcess | undefined;
    const ids = await catchInFlight('victim2', async () => {
      await prep.stop();
      victim = await startMember('victim2', { HEARTH_DRIVER_FAKE_LATENCY_MS: '30000' });
    });
    if (!victim) throw new Error('the victim did not start');
    // A grace of a few TTLs keeps the five orphans in view long enough to see them all at once
    // on a loaded machine before the rescuers take them over.
    const GRACE_MS = 3 * LEASE_TTL_MS;
    const auto = { HEARTH_ORPHANS_AUTO_CLEANUP: 'true', HEARTH_ORPHANS_GRACE_MS: String(GRACE_MS) };
    const rescuers = [await startMember('auto-a', auto), await startMember('auto-b', auto)];
    const { killedAt } = await killAndDetect(victim, 'victim2', ids);
    await expectCleaned(ids, 'victim2');
    const clients = rescuers.map((r) => new ClusterClient(r));
    const sum = async (name: string, labels: Record<string, string>) => (await Promise.all(clients.map((c) => c.metric(name, labels)))).reduce((a, b) => a + b, 0);
    expect(await sum('hearth_orphan_cleanups_total', { result: 'cleaned' })).toBe(5);
    const takeovers = rescuers.flatMap((r) => r.logs().filter((l) => l.msg === 'took over an orphaned operation'));
    expect(new Set(takeovers.map((l) => l.id)).size).toBe(5);
    expect(takeovers).toHaveLength(5);
    // One death: one failover across both members (the failover ledger), however they split its ops.
    expect(await sum('hearth_failovers_total', { cluster: CLUSTER_ID, reason: 'auto_cleanup' })).toBe(1);
    expect(await sum('hearth_failover_duration_seconds_count', {})).toBe(1);
    expect(takeovers.filter((l) => l.failover === true)).toHaveLength(1);
    const first = Math.min(...takeovers.map((l) => Date.parse(String(l.time))));
    const death = await sum('hearth_failover_duration_seconds_sum', {});
    console.log(
      `[orphans] automatic cleanup (grace ${GRACE_MS} ms): kill -9 → first takeover ${first - killedAt} ms; death → takeover ${Math.round(death * 1000)} ms on average; takeovers per member ${rescuers.map((r) => r.logs().filter((l) => l.msg === 'took over an orphaned operation').length).join('/')}`,
    );
    // Not before the grace period after the death (the lease expiry), which is after the kill.
    expect(first - killedAt).toBeGreaterThanOrEqual(GRACE_MS);
  });

  it('a cluster with no live member is unavailable (cinderclient and hearth work-cleanup); hearth orphans lists what is left', async () => {
    for (const p of procs.filter((p) => p !== api)) if (p.process.alive) await p.kill();
    const lonely = await startMember('lonely');
    const vol = await client.createVolume();
    await started(journal, 'createVolume', `volume:${vol}`);
    await lonely.kill();
    await waitFor(async () => (await client.orphans()).some((o) => o.id === vol), { timeoutMs: LEASE_TTL_MS + 5_000, what: 'the orphan' });
    const out = await cinder(api.apiUrl, 'work-cleanup', '--cluster', CLUSTER);
    expect(out).toContain('There are no alternative nodes to do cleanup for the following services:');
    expect(out).not.toContain('Following services will be cleaned');
    expect(parseCinderTable(out).map((r) => r.Host).sort()).toEqual(['auto-a@be', 'auto-b@be', 'lonely@be', 'prep@be', 'rescuer@be', 'victim2@be', 'victim@be']);
    const hearth = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/hearth-main.ts'), ...args, '--url', api.apiUrl], { cwd: REPO, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    const cli = await hearth('work-cleanup', '--cluster', CLUSTER_ID, '--host', 'lonely', '--json');
    expect(JSON.parse(cli.stdout)).toEqual({ cleaning: [], unavailable: [expect.objectContaining({ host: 'lonely@be', cluster_name: CLUSTER_ID, binary: 'cinder-volume' })] });
    const listed = await hearth('orphans', '--json');
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: vol, kind: 'create_volume', owner_host: 'lonely@be' })]);
    expect((await client.status('volume', vol))).toBe('creating');
    expect(lonely.process.alive).toBe(false);
  });
});
