import { Backoff } from '../../../src/lifecycle/retry.js';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { createLogger, silentLogger } from '../../../src/observability/logger.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import type { MembershipEvent } from '../../../src/membership/membership.js';
import { EtcdServer } from '../../support/etcd.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

/**
 * The watch resumes from its revision and re-lists when that revision was compacted away. A
 * private etcd (compaction is cluster-wide) with a proxy in front of the watcher: cut the
 * watcher off, change members and compact past its revision, heal — it must re-list.
 */
describe('membership watch across compaction', () => {
  let etcd: EtcdServer;
  let proxy: TcpProxy;
  let direct: Etcd3;
  let proxied: Etcd3;
  const prefix = '/hearth-compaction';
  const keys = new KeyLayout(prefix);

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    proxy = await TcpProxy.start({ port: etcd.clientPort });
    direct = createEtcdClient(etcdConfig(etcd.endpoints, prefix));
    proxied = createEtcdClient(etcdConfig([proxy.url], prefix));
  });
  afterAll(async () => {
    proxied?.close();
    direct?.close();
    await proxy?.close();
    await etcd?.stop();
  });

  const describeEvent = (e: MembershipEvent): string =>
    e.type === 'members-synced' ? `synced:${e.reason}:${e.members.map((m) => m.host).sort().join(',')}` : `${e.type}:${e.member.host}`;

  it('re-lists after compaction: missed leaves and joins arrive, then a compacted sync, then live events again', async () => {
    const writer = new EtcdMembership({ client: direct, keys, clock: systemClock, logger: silentLogger() });
    const watcher = new EtcdMembership({ client: proxied, keys, clock: systemClock, logger: process.env.DEBUG_WATCH ? createLogger({ level: 'debug' }) : silentLogger(), retry: Backoff.constant(200) });
    const join = async (host: string) => {
      const session = await TestSession.etcd(direct, host, 10_000);
      const member = await writer.join({ identity: { cluster: 'c@be', host, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session });
      return { member, session };
    };
    const a = await join('a@be');
    const ctl = new AbortController();
    const events: string[] = [];
    const iterating = (async () => {
      for await (const e of watcher.watch(ctl.signal)) if (e.type !== 'member-heartbeat') events.push(describeEvent(e));
    })();
    await waitFor(() => events.length === 1, { what: 'initial sync' });
    expect(events).toEqual(['synced:initial:a@be']);

    proxy.cut();
    await a.member.leave();
    await a.session.close();
    const b = await join('b@be');
    // Churn past the watcher's revision, then compact everything before now.
    for (let i = 0; i < 5; i++) await b.member.heartbeat();
    const now = (await direct.get(keys.aliveAll()).exec()).header.revision;
    await direct.kv.compact({ revision: now, physical: true });
    const compactedAt = BigInt(now);
    proxy.heal();

    await waitFor(() => events.some((e) => e.startsWith('synced:compacted')), { timeoutMs: 30_000, what: 'a compacted re-list' });
    expect(events).toEqual(['synced:initial:a@be', 'member-left:a@be', 'member-joined:b@be', 'synced:compacted:b@be']);

    // Live again: a new member arrives as an ordinary event.
    const c = await join('c@be');
    await waitFor(() => events.includes('member-joined:c@be'), { timeoutMs: 10_000, what: 'c joined after the re-list' });
    expect(BigInt(c.member.owner.aliveRevision)).toBeGreaterThan(compactedAt);
    console.log(`[membership] watch re-listed after compaction at revision ${compactedAt}; events: ${events.join(' | ')}`);
    ctl.abort();
    await iterating;
    await Promise.all([b.session.close(), c.session.close()]);
    await writer.close();
    await watcher.close();
  });

  it('a watch cut off from etcd resumes from its revision and delivers every change it missed, without a re-list', async () => {
    const writer = new EtcdMembership({ client: direct, keys, clock: systemClock, logger: silentLogger() });
    const watcher = new EtcdMembership({ client: proxied, keys, clock: systemClock, logger: silentLogger(), retry: Backoff.constant(200) });
    const join = async (host: string) => {
      const session = await TestSession.etcd(direct, host, 10_000);
      const member = await writer.join({ identity: { cluster: 'r@be', host, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session });
      return { member, session };
    };
    const ctl = new AbortController();
    const events: string[] = [];
    const iterating = (async () => {
      for await (const e of watcher.watch(ctl.signal)) if (e.type !== 'member-heartbeat') events.push(describeEvent(e));
    })();
    await waitFor(() => events.length === 1, { what: 'initial sync' });
    const x = await join('x@be');
    await waitFor(() => events.includes('member-joined:x@be'), { what: 'x joined' });
    proxy.cut();
    await x.member.leave();
    const y = await join('y@be');
    await new Promise((r) => setTimeout(r, 300));
    proxy.heal();
    await waitFor(() => events.includes('member-joined:y@be'), { timeoutMs: 30_000, what: 'y joined after the cut' });
    expect(events.slice(1)).toEqual(['member-joined:x@be', 'member-left:x@be', 'member-joined:y@be']);
    ctl.abort();
    await iterating;
    await Promise.all([x.session.close(), y.session.close()]);
    await writer.close();
    await watcher.close();
  });
});
