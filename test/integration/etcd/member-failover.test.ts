// hearth's etcd client against a real three-member etcd with every member in its endpoints: a
// member killed, frozen or cut off from its peers costs no read and no write that it never took,
// and later calls go to the live members (hearth_etcd_calls_total shows where).
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { EtcdClientMetrics } from '../../../src/etcd/metrics.js';
import type { EtcdCluster } from '../../support/etcd-cluster.js';
import { useEtcdCluster } from '../../support/topology-fixtures.js';
import type { Etcd3 } from 'etcd3';

const PREFIX = '/hearth-failover';
const CALL_TIMEOUT_MS = 1_500;

/** A mix of calls hearth makes: reads, a transaction of ranges, plain and conditional writes. */
async function workload(client: Etcd3, round: string, count: number): Promise<{ failed: string[] }> {
  const failed: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${PREFIX}/${round}/${i}`;
    const calls: [string, () => Promise<unknown>][] = [
      ['put', () => client.put(key).value('v').exec()],
      ['get', () => client.get(key).string()],
      ['txn-read', () => client.if(key, 'Create', '>', 0).then(client.get(key)).commit()],
      ['txn-write', () => client.if(key, 'Value', '==', 'v').then(client.put(key).value('w')).commit()],
    ];
    for (const [what, call] of calls) {
      try {
        await call();
      } catch (err) {
        failed.push(`${what} ${key}: ${(err as Error).message}`);
      }
    }
  }
  return { failed };
}

function metric(text: string, endpoint: string, result: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`hearth_etcd_calls_total{endpoint="${endpoint}",result="${result}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('etcd client member failover (three members)', () => {
  const topology = useEtcdCluster();
  let cluster: EtcdCluster;
  let client: Etcd3;
  const registry = new Registry();
  let hostOf: (i: number) => string;

  beforeAll(() => {
    cluster = topology().local();
    hostOf = (i) => cluster.member(i).url.replace(/^https?:\/\//, '');
    const settings = { endpoints: topology().endpoints, prefix: PREFIX, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: CALL_TIMEOUT_MS };
    client = createEtcdClient(settings, undefined, new EtcdClientMetrics(registry, topology().endpoints));
  });
  afterAll(() => {
    client?.close();
  });

  it('a killed member: no read fails, a write fails at most on the first contact; later calls go to the live members', async () => {
    await workload(client, 'warm', 5);
    await cluster.member(0).kill();
    try {
      const { failed } = await workload(client, 'killed', 20);
      // A read is always sent again elsewhere. A write that was on its way to the member as it died
      // may have been applied, so it is returned to its caller (hearth's reconcile path re-reads):
      // that can happen once, on the call that finds the member gone — never after.
      expect(failed.filter((f) => !/^(put|txn-write) /.test(f))).toEqual([]);
      expect(failed.length).toBeLessThanOrEqual(1);
      for (const f of failed) expect(f).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
      const text = await registry.metrics();
      // The dead member was tried and failed, then avoided: the live ones took the rest of the 80 calls.
      const onDead = metric(text, hostOf(0), 'unavailable') + metric(text, hostOf(0), 'deadline');
      expect(onDead).toBeGreaterThanOrEqual(1);
      expect(metric(text, hostOf(1), 'ok') + metric(text, hostOf(2), 'ok')).toBeGreaterThanOrEqual(80 - failed.length);
      console.log(`[etcd] member 0 killed: ${onDead} calls failed on it and went elsewhere; ${failed.length} of 80 returned to the caller (${failed.join('; ') || 'none'})`);
    } finally {
      await cluster.member(0).start();
      await cluster.waitForLeader({ timeoutMs: 20_000 });
    }
  });

  it('a member cut off from its peers (no leader there): its refusals are retried elsewhere, writes included', async () => {
    const leader = await cluster.waitForLeader({ timeoutMs: 20_000 });
    const cut = [0, 1, 2].find((i) => cluster.member(i) !== leader) as number;
    cluster.partition(cut);
    try {
      // It notices it lost its leader after an election timeout; from then on it refuses with "no leader".
      await new Promise((r) => setTimeout(r, 3_000));
      const before = metric(await registry.metrics(), hostOf(cut), 'no_leader');
      const { failed } = await workload(client, 'partitioned', 20);
      expect(failed).toEqual([]);
      // hasleader: the cut member refused at once ("no leader") rather than holding the calls.
      const refused = metric(await registry.metrics(), hostOf(cut), 'no_leader') - before;
      expect(refused).toBeGreaterThanOrEqual(1);
      console.log(`[etcd] member ${cut} cut off: ${refused} calls refused there (no leader) and went elsewhere; 0 of 80 failed`);
    } finally {
      cluster.heal(cut);
    }
  });

  it('no leader anywhere (an election, here a quorum loss that ends): a write is held, bounded, and lands once a leader is back', async () => {
    const settings = { endpoints: topology().endpoints, prefix: PREFIX, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 10_000 };
    const patient = createEtcdClient(settings);
    try {
      await cluster.waitForLeader({ timeoutMs: 20_000 });
      await patient.put(`${PREFIX}/held/warm`).value('x').exec();
      await Promise.all([cluster.member(1).stop(), cluster.member(2).stop()]);
      // Member 0 is left alone: once its election timeout passes it has no leader and refuses.
      await new Promise((r) => setTimeout(r, 2_500));
      // Held only so long (etcd.callTimeoutMs, 1.5 s for `client`): then the refusal comes back.
      await expect(client.put(`${PREFIX}/held/bounded`).value('z').exec()).rejects.toThrow(/no leader|UNAVAILABLE/);
      const startedAt = Date.now();
      const write = patient.put(`${PREFIX}/held/during`).value('y').exec().then(
        () => undefined,
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 500));
      await Promise.all([cluster.member(1).start(), cluster.member(2).start()]);
      expect(await write).toBeUndefined();
      console.log(`[etcd] a write sent with no leader anywhere was held ${Date.now() - startedAt} ms and landed`);
      expect(await patient.get(`${PREFIX}/held/during`).string()).toBe('y');
    } finally {
      patient.close();
      for (const i of [1, 2]) if (!cluster.member(i).alive) await cluster.member(i).start();
      await cluster.waitForLeader({ timeoutMs: 20_000 });
    }
  });

  it('a frozen member (SIGSTOP): reads go on elsewhere; a write it may have taken is left to the caller, then calls avoid it', async () => {
    await cluster.waitForLeader({ timeoutMs: 20_000 });
    const frozen = 2;
    cluster.member(frozen).pause();
    try {
      const { failed } = await workload(client, 'frozen', 20);
      // Only writes whose deadline passed on the frozen member may fail (their outcome is unknown);
      // reads never, and after the first failure the frozen member is avoided.
      for (const f of failed) expect(f).toMatch(/^(put|txn-write) /);
      expect(failed.length).toBeLessThanOrEqual(4);
    } finally {
      cluster.member(frozen).resume();
    }
  });
});
