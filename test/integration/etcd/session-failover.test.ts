// A worker's etcd session on a three-member etcd, every member in its endpoints: freezing or
// killing the member its keepalive stream runs on must not end the session. The keepalive moves
// to another member within the safe window (one unanswered keepalive is enough to move it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import type { SessionState } from '../../../src/session/session.js';
import type { EtcdCluster } from '../../support/etcd-cluster.js';
import { useEtcdCluster } from '../../support/topology-fixtures.js';
import type { Etcd3 } from 'etcd3';

// hearth's default lease: TTL 10 s, margin 2 s (keepalive every 3.3 s, an answer awaited 1.7 s).
const TTL_MS = 10_000;
const MARGIN_MS = 2_000;

describe('an etcd session across member faults (three members)', () => {
  const topology = useEtcdCluster();
  let cluster: EtcdCluster;
  let client: Etcd3;

  beforeAll(() => {
    cluster = topology().local();
    const settings = { endpoints: topology().endpoints, prefix: '/hearth-session-failover', username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 };
    client = createEtcdClient(settings);
  });
  afterAll(() => client?.close());

  async function openWatched(): Promise<{ session: EtcdSession; states: SessionState[] }> {
    const session = await EtcdSession.open({ client, host: 'w@be', leaseTtlMs: TTL_MS, leaseMarginMs: MARGIN_MS, callTimeoutMs: 5_000 });
    const states: SessionState[] = [];
    session.onStateChange((change) => states.push(change.state));
    return { session, states };
  }

  it('each member frozen in turn for longer than the TTL: the session is never lost', async () => {
    const { session, states } = await openWatched();
    try {
      for (const i of [0, 1, 2]) {
        await cluster.waitForLeader({ timeoutMs: 20_000 });
        cluster.member(i).pause();
        try {
          await new Promise((r) => setTimeout(r, TTL_MS + 2_000));
        } finally {
          cluster.member(i).resume();
        }
        expect(session.state, `member ${i} frozen`).not.toBe('lost');
      }
      expect(states).not.toContain('lost');
      console.log(`[session] three members frozen in turn for ${TTL_MS + 2_000} ms each: states ${states.join(' → ') || 'held throughout'}`);
    } finally {
      await session.close();
    }
  });

  it('each member killed in turn (the leader among them): the session is never lost', async () => {
    const { session, states } = await openWatched();
    try {
      for (const i of [0, 1, 2]) {
        await cluster.waitForLeader({ timeoutMs: 20_000 });
        await cluster.member(i).kill();
        await new Promise((r) => setTimeout(r, TTL_MS + 2_000));
        expect(session.state, `member ${i} killed`).not.toBe('lost');
        await cluster.member(i).start();
      }
      expect(states).not.toContain('lost');
      console.log(`[session] three members killed in turn for ${TTL_MS + 2_000} ms each: states ${states.join(' → ') || 'held throughout'}`);
    } finally {
      for (const i of [0, 1, 2]) if (!cluster.member(i).alive) await cluster.member(i).start();
      await cluster.waitForLeader({ timeoutMs: 20_000 });
      await session.close();
    }
  });
});
