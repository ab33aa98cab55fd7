import { beforeAll, describe, expect, it } from 'vitest';
import { EtcdCallError, type EtcdCluster, type EtcdMember } from '../../support/etcd-cluster.js';
import { useEtcdCluster } from '../../support/topology-fixtures.js';

// The fault primitives of the three-member etcd cluster, each shown to do what later suites rely
// on. The cluster is shared by the tests in order; each test leaves all three members healthy.

/** Polls until `member` answers a local (serializable) read of `key` with `value`. */
async function caughtUp(member: EtcdMember, key: string, value: string): Promise<void> {
  await expect.poll(() => member.get(key, { serializable: true, timeoutMs: 1_000 }).catch(() => 'unreachable'), { timeout: 20_000 }).toBe(value);
}

async function allHealthy(cluster: EtcdCluster): Promise<void> {
  await expect.poll(async () => (await Promise.all(cluster.members.map((m) => m.healthy()))).every(Boolean), { timeout: 20_000 }).toBe(true);
}

describe('a three-member etcd cluster', () => {
  const topology = useEtcdCluster({ members: 3 });
  let etcd: EtcdCluster;
  beforeAll(() => {
    etcd = topology().local();
  });

  it('forms: three healthy members on their own ports, one leader that every member follows', async () => {
    expect(etcd.endpoints).toHaveLength(3);
    expect(new Set(etcd.members.map((m) => m.pid)).size).toBe(3);
    expect(new Set(etcd.members.flatMap((m) => [m.clientPort, m.peerPort])).size).toBe(6);
    const statuses = await Promise.all(etcd.members.map((m) => m.status()));
    const leader = await etcd.waitForLeader();
    for (const s of statuses) expect(s?.leaderId).toBe(statuses[leader.index]?.memberId);
    // Every peer connection crosses a proxy that knows which member opened it.
    const sources = etcd.peerLinks.sources();
    expect(sources.flat()).not.toContain('?');
    sources.forEach((from, target) => expect(from).not.toContain(String(target)));
  });

  it('kill -9 of the leader: a new leader is elected, the survivors commit, the restarted member catches up', async () => {
    const old = await etcd.waitForLeader();
    await old.put('/harness/kill', 'before');
    await old.kill();
    expect(old.alive).toBe(false);
    const next = await etcd.waitForLeader({ not: old });
    for (const m of etcd.members.filter((m) => m !== old)) await m.put('/harness/kill', `after-${m.name}`);
    const survivor = etcd.members.find((m) => m !== old && m !== next)!;
    await next.put('/harness/kill', 'final');
    await old.start(); // same data dir, same ports
    await caughtUp(old, '/harness/kill', 'final');
    expect(await survivor.get('/harness/kill')).toBe('final');
    await allHealthy(etcd);
  });

  it('SIGSTOP of the leader: the others elect a new one; SIGCONT, it follows again', async () => {
    const old = await etcd.waitForLeader();
    await old.paused();
    try {
      expect(await old.status(500)).toBeUndefined(); // stopped: it answers nothing
      const next = await etcd.waitForLeader({ not: old });
      await next.put('/harness/pause', 'during');
    } finally {
      old.resume();
    }
    await caughtUp(old, '/harness/pause', 'during');
    await allHealthy(etcd);
  });

  it('partition: the cut leader loses leadership and cannot commit, the majority can; healed, it catches up', async () => {
    const cut = await etcd.waitForLeader();
    await cut.put('/harness/partition', 'before');
    etcd.partition(cut.index, 'silence');
    try {
      const next = await etcd.waitForLeader({ not: cut });
      await next.put('/harness/partition', 'majority');
      // Its clients still reach it: it answers a status and a local read, but it cannot commit.
      expect(await cut.status()).toBeDefined();
      expect(await cut.get('/harness/partition', { serializable: true })).toBe('before');
      await expect(cut.put('/harness/partition', 'minority', 2_000)).rejects.toBeInstanceOf(EtcdCallError);
      await expect(cut.get('/harness/partition', { timeoutMs: 2_000 })).rejects.toBeInstanceOf(EtcdCallError);
    } finally {
      etcd.heal(cut.index);
    }
    await caughtUp(cut, '/harness/partition', 'majority');
    await expect.poll(() => cut.put('/harness/partition', 'healed', 1_000).then(() => 'ok', () => 'failed'), { timeout: 20_000 }).toBe('ok');
    await allHealthy(etcd);
  });

  it('quorum loss: with two members down no member commits; back on the same data and ports, all do', async () => {
    const [a, b, c] = etcd.members as [EtcdMember, EtcdMember, EtcdMember];
    await a.put('/harness/quorum', 'kept');
    const ports = [b.clientPort, c.clientPort];
    await Promise.all([b.kill(), c.kill()]);
    await expect(a.put('/harness/quorum', 'lost', 2_000)).rejects.toBeInstanceOf(EtcdCallError);
    await expect(b.put('/harness/quorum', 'lost', 2_000)).rejects.toBeInstanceOf(EtcdCallError);
    expect(await etcd.leader()).toBeUndefined();
    await Promise.all([b.start(), c.start()]);
    expect([b.clientPort, c.clientPort]).toEqual(ports);
    await etcd.waitForLeader();
    for (const m of [a, b, c]) {
      await expect.poll(() => m.put('/harness/quorum', m.name, 1_000).then(() => 'ok', () => 'failed'), { timeout: 20_000 }).toBe('ok');
    }
    expect(await b.get('/harness/quorum')).toBe(c.name);
    await allHealthy(etcd);
  });
});
