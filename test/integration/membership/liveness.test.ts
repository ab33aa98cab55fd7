import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import type { MembershipEvent } from '../../../src/membership/membership.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { waitFor } from '../../support/wait.js';

const LEASE_TTL_MS = 3_000;

/**
 * Up and down come from the lease: real `hearth serve` workers in cluster mode, observed
 * through a membership watch (when the alive key goes) and through the API (the views).
 */
describe('liveness of real worker processes', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let base: Record<string, string>;
  let observer: EtcdMembership;
  let closeObserver: () => void;
  let api: HearthProcess;
  const events: { at: number; event: MembershipEvent }[] = [];
  const watchCtl = new AbortController();
  const procs: HearthProcess[] = [];

  const leftAt = (host: string, after: number) =>
    waitFor(() => events.find((e) => e.at >= after && e.event.type === 'member-left' && e.event.member.host === host)?.at, {
      timeoutMs: LEASE_TTL_MS + 10_000,
      intervalMs: 5,
      what: `${host} to leave`,
    });
  const serviceState = async (host: string): Promise<unknown> => {
    const res = await fetch(`${api.apiUrl}/v3/admin/os-services?host=${host}`, { headers: { 'OpenStack-API-Version': 'volume 3.7' } });
    return ((await res.json()) as { services: { state: string }[] }).services[0]?.state;
  };
  const startWorker = async (host: string, over: Record<string, string> = {}): Promise<HearthProcess> => {
    const p = await startHearth({ name: `worker-${host}`, env: { ...base, HEARTH_HOST: host, HEARTH_ROLES: 'worker', ...over } });
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    base = {
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_CLUSTER: 'live',
      HEARTH_BACKEND: 'be',
      HEARTH_LEASE_TTL_MS: String(LEASE_TTL_MS),
      HEARTH_LEASE_MARGIN_MS: '1000',
      HEARTH_REPORT_INTERVAL_MS: '1000',
    };
    const client = createEtcdClient(etcdConfig(etcd.endpoints, etcd.prefix));
    observer = new EtcdMembership({ client, keys: new KeyLayout(etcd.prefix), clock: systemClock, logger: silentLogger() });
    closeObserver = () => client.close();
    void (async () => {
      for await (const event of observer.watch(watchCtl.signal)) events.push({ at: Date.now(), event });
    })();
    api = await startHearth({ name: 'api', env: { ...base, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
  });
  afterAll(async () => {
    watchCtl.abort();
    await Promise.all(procs.map((p) => p.stop()));
    await observer?.close();
    closeObserver?.();
    await etcd?.close();
    await amqp?.close();
  });

  it(`a SIGKILLed worker shows as down once etcd expires its lease (TTL ${LEASE_TTL_MS} ms)`, async () => {
    const worker = await startWorker('killed');
    await waitFor(async () => (await serviceState('killed')) === 'up', { what: 'killed up' });
    const leaseId = (await etcd.client.get(new KeyLayout(etcd.prefix).alive('killed@be')).exec()).kvs[0]!.lease;
    const killedAt = Date.now();
    await worker.kill();
    const left = await leftAt('killed@be', killedAt);
    console.log(`[membership] SIGKILL → member-left after ${left - killedAt} ms (lease TTL ${LEASE_TTL_MS} ms)`);
    // Down because etcd expired the lease the alive key rode on (a dead process deletes nothing),
    // so within one TTL of its last keepalive by etcd's rule; make bench measures how long.
    expect((await etcd.client.leaseClient.leaseTimeToLive({ ID: leaseId })).TTL).toBe('-1');
    expect(await serviceState('killed')).toBe('down');
    const cluster = await (await fetch(`${api.apiUrl}/v3/admin/clusters/live@be`, { headers: { 'OpenStack-API-Version': 'volume 3.7' } })).json();
    expect((cluster as { cluster: Record<string, unknown> }).cluster).toMatchObject({ num_hosts: 1, num_down_hosts: 1, state: 'down' });
  });

  it('a worker that shuts down cleanly (SIGTERM) revokes its lease and shows as down at once', async () => {
    const worker = await startWorker('stopped');
    await waitFor(async () => (await serviceState('stopped')) === 'up', { what: 'stopped up' });
    const leaseId = (await etcd.client.get(new KeyLayout(etcd.prefix).alive('stopped@be')).exec()).kvs[0]!.lease;
    expect(leaseId).not.toBe('0');
    const stoppedAt = Date.now();
    const stopping = worker.stop();
    const left = await leftAt('stopped@be', stoppedAt);
    expect(await stopping).toEqual({ code: 0, signal: null });
    console.log(`[membership] SIGTERM → member-left after ${left - stoppedAt} ms (lease TTL ${LEASE_TTL_MS} ms)`);
    expect(await serviceState('stopped')).toBe('down');
    // "At once": the worker deleted its alive key itself and revoked its lease before it
    // exited — the lease is gone the moment the process is, not a TTL later.
    const messages = worker.logs().map((l) => l.msg);
    expect(messages.indexOf('left the cluster')).toBeGreaterThan(messages.indexOf('shutting down'));
    const ttl = await etcd.client.leaseClient.leaseTimeToLive({ ID: leaseId });
    expect(ttl.TTL).toBe('-1');
  });

  it('a restarted host waits for its killed run to expire, is not ready meanwhile, then joins as a new incarnation', async () => {
    // The killed run's lease is long (10 s), so the new process surely comes up before it expires
    // even on a loaded machine (with 3 s it sometimes came up just after, with nothing to wait for).
    const killedTtlMs = 10_000;
    // Both runs: a process waits for an earlier incarnation at most its own TTL.
    const longLease = { HEARTH_LEASE_TTL_MS: String(killedTtlMs), HEARTH_LEASE_MARGIN_MS: '3000' };
    const first = await startWorker('restarted', longLease);
    const firstJoin = events.find((e) => e.event.type === 'member-joined' && e.event.member.host === 'restarted@be')!.event;
    const killedAt = Date.now();
    await first.kill();
    const second = await startHearth({ name: 'worker-restarted-2', env: { ...base, HEARTH_HOST: 'restarted', HEARTH_ROLES: 'worker', ...longLease }, waitFor: 'live' });
    procs.push(second);
    const ready = await fetch(`${second.opsUrl}/readyz?verbose`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('[-]membership failed');
    await waitFor(async () => (await fetch(`${second.opsUrl}/readyz`)).status === 200, { timeoutMs: killedTtlMs + 10_000, what: 'restarted ready' });
    expect(second.output()).toContain('an earlier incarnation of this host is still alive; waiting for it to expire');
    const left = events.find((e) => e.at >= killedAt && e.event.type === 'member-left' && e.event.member.host === 'restarted@be');
    const rejoin = events.filter((e) => e.event.type === 'member-joined' && e.event.member.host === 'restarted@be').at(-1)!;
    console.log(`[membership] restarted host rejoined ${rejoin.at - killedAt} ms after its previous run was SIGKILLed (its lease: ${killedTtlMs} ms)`);
    if (firstJoin.type !== 'member-joined' || rejoin.event.type !== 'member-joined') throw new Error('unexpected events');
    // It joined only after the killed run's alive key went, as a new incarnation.
    expect(left).toBeDefined();
    expect(rejoin.at).toBeGreaterThanOrEqual(left!.at);
    expect(rejoin.event.member.incarnation).not.toBe(firstJoin.member.incarnation);
    expect(BigInt(rejoin.event.member.aliveRevision)).toBeGreaterThan(BigInt(firstJoin.member.aliveRevision));
  });

  it('a second process with a host name that is alive cannot join: it waits a TTL, then exits with ALREADY_ALIVE', async () => {
    const first = await startWorker('dup');
    const startedAt = Date.now();
    const second = await startHearth({ name: 'worker-dup-2', env: { ...base, HEARTH_HOST: 'dup', HEARTH_ROLES: 'worker' }, waitFor: 'none' });
    procs.push(second);
    const exit = await second.process.waitForExit();
    expect(exit.code).toBe(1);
    expect(second.output()).toContain('ALREADY_ALIVE');
    expect(second.output()).toContain('host dup@be is already alive as incarnation dup@be:');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(LEASE_TTL_MS);
    // The first one is untouched.
    expect((await fetch(`${first.opsUrl}/readyz`)).status).toBe(200);
    expect(await serviceState('dup')).toBe('up');
  });
});
