// The operation runner on a real etcd when its incarnation ends mid-operation: its lease
// revoked behind its back, or a partition from etcd. The driver call is aborted, nothing more
// is written (the fenced write is refused), and the op stays owned by the dead incarnation — an
// orphan for cleanup — while the member rejoins as a new incarnation.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeVolumeDriver } from '../../../src/drivers/fake-volume-driver.js';
import { checkJournal, parseJournal } from '../../../src/drivers/fake-journal.js';
import { FencedError } from '../../../src/errors.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { MembershipMetrics } from '../../../src/membership/metrics.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { IncarnationSupervisor } from '../../../src/incarnation/supervisor.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { workerMetrics } from '../../../src/worker/metrics.js';
import { OpClaimer } from '../../../src/worker/op-claim.js';
import { OperationRunner } from '../../../src/worker/operation-runner.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { useEtcd } from '../../support/context.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const CLUSTER = 'loss@fake';

/** One worker's parts in this process, on `client`. */
async function member(client: Etcd3, prefix: string) {
  const registry = new Registry();
  const logger = silentLogger();
  const keys = new KeyLayout(prefix);
  const store = new EtcdStateStore({ client, keys, clock: systemClock, metrics: createStateMetrics(registry), logger });
  const membership = new EtcdMembership({ client, keys, clock: systemClock, logger });
  const incarnations = new IncarnationSupervisor({
    openSession: (signal) => EtcdSession.open({ client, host: 'w1@fake', leaseTtlMs: 3_000, leaseMarginMs: 1_000, callTimeoutMs: 1_000, signal }),
    lockServiceFor: (session) => new EtcdLockService({ client, keys, session, callTimeoutMs: 1_000 }),
    membership,
    join: { identity: { cluster: CLUSTER, host: 'w1@fake', zone: 'nova' }, binary: 'cinder-volume', version: 'test' },
    clock: systemClock,
    logger,
    metrics: new MembershipMetrics(registry),
    reportIntervalMs: 1_000,
    previousIncarnationWaitMs: 5_000,
    retry: Backoff.constant(200),
  });
  await incarnations.start();
  const journal = join(await mkdtemp(join(tmpdir(), 'hearth-loss-')), 'journal.jsonl');
  const driver = await FakeVolumeDriver.open({ latencyMs: 20_000, journalPath: journal });
  const runner = new OperationRunner({ store, driver, incarnations, publisher: { publish: async () => true }, metrics: workerMetrics(registry), clock: systemClock, logger, retry: Backoff.constant(100) });
  return {
    store,
    membership,
    incarnations,
    runner,
    claimer: new OpClaimer({ store, membership }),
    journal: async () => checkJournal(parseJournal(await readFile(journal, 'utf8')).entries),
    async close() {
      await incarnations.close();
      await driver.close();
      await store.close();
    },
  };
}

describe('the incarnation ends mid-operation', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function startOp(w: Awaited<ReturnType<typeof member>>) {
    const created = await w.store.create('volume', { record: { ...newVolume(), cluster: CLUSTER }, op: { kind: 'create_volume', params: { size: 1 } } });
    if (!created.ok || !created.op) throw new Error('create failed');
    const me = w.incarnations.current()!.member;
    const claimed = await w.claimer.claimOp(created.op, me);
    if (!claimed.ok) throw new Error('claim failed');
    const outcome = w.runner.run(claimed.op);
    await expect.poll(async () => (await w.journal()).calls.length, { timeout: 5_000, interval: 20 }).toBe(1);
    return { ref: { type: 'volume' as const, id: created.record.id }, me, outcome };
  }

  it('lease revoked behind its back: the driver call aborts, the outcome is fenced, the op stays owned by the dead incarnation', async () => {
    const etcd = useEtcd();
    const client = createEtcdClient(etcdConfig(etcd.endpoints, etcd.prefix));
    const w = await member(client, etcd.prefix);
    cleanups.push(() => etcd.close(), async () => client.close(), () => w.close());
    const { ref, me, outcome } = await startOp(w);
    const lease = BigInt(`0x${me.owner.incarnation.split(':')[1]!}`).toString();
    const revoked = Date.now();
    await etcd.client.leaseClient.leaseRevoke({ ID: lease });
    expect(await outcome).toEqual({ result: 'fenced' });
    const abortedMs = Date.now() - revoked;
    expect(abortedMs).toBeLessThan(3_000);
    expect(await w.store.get(ref)).toMatchObject({ status: 'creating', host: null });
    expect(await w.store.getOp(ref)).toMatchObject({ owner: me.owner, attempt: 1 });
    expect((await w.journal()).calls).toEqual([expect.objectContaining({ ok: false })]);
    // Its fenced write is refused: it is not alive any more.
    const write = await w.store.transition(ref, { expect: { status: 'creating' }, expectOp: { owner: me.owner.incarnation }, set: { status: 'available' }, op: 'remove', by: 'worker', fence: me.fence() }).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(FencedError);
    // The member goes on as a new incarnation; the op is an orphan of the old one.
    await expect.poll(() => {
      const now = w.incarnations.current()?.member.owner.incarnation;
      return now !== undefined && now !== me.owner.incarnation;
    }, { timeout: 10_000 }).toBe(true);
    console.log(`[lease-loss] revoked lease: driver call aborted and run ended (fenced) ${abortedMs} ms later`);
  });

  it('partitioned from etcd: lost before etcd can expire the lease; aborted, nothing written; rejoins after healing', async () => {
    const etcd = useEtcd();
    const proxy = await TcpProxy.start({ port: Number(new URL(etcd.endpoints[0]!).port) });
    const client = createEtcdClient(etcdConfig([proxy.url], etcd.prefix));
    const w = await member(client, etcd.prefix);
    cleanups.push(
      () => etcd.close(),
      async () => {
        proxy.heal();
        await proxy.close();
      },
      async () => client.close(),
      () => w.close(),
    );
    const { ref, me, outcome } = await startOp(w);
    const paused = Date.now();
    proxy.pause();
    expect(await outcome).toEqual({ result: 'fenced' });
    const abortedMs = Date.now() - paused;
    // Lost at safeUntil: at most TTL − margin after the last acknowledged keepalive.
    expect(abortedMs).toBeLessThan(3_000);
    proxy.resume();
    expect(await etcd.client.get(new KeyLayout(etcd.prefix).op('volume', ref.id)).string()).toContain(me.owner.incarnation);
    expect(JSON.parse((await etcd.client.get(new KeyLayout(etcd.prefix).resource('volume', ref.id)).string())!)).toMatchObject({ status: 'creating' });
    await expect.poll(() => {
      const now = w.incarnations.current()?.member.owner.incarnation;
      return now !== undefined && now !== me.owner.incarnation;
    }, { timeout: 15_000 }).toBe(true);
    console.log(`[lease-loss] partition: run ended (fenced) ${abortedMs} ms after the partition began (lease TTL 3000 ms, margin 1000 ms)`);
  });
});
