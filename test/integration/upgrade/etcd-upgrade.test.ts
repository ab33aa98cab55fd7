// The upgrade concern on a real etcd, with two "releases" of one build: release 1 as shipped
// (messages and schema 1) and a release 2 that reads messages and schemas 1–2, with a made-up schema step.
// Covers: presence of every process, the message version following the living (a leaving
// process stops pinning on its delete event), finalize refused while a process cannot read the
// next schema, the data migration rewriting every record, and the old build refusing to start
// afterwards with a message naming both schemas.
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { ManualClock, systemClock } from '../../../src/lifecycle/clock.js';
import { DEFAULT_ETCD_RETRY } from '../../../src/lifecycle/retry.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { type ProtocolSupport, ProtocolMismatchError } from '../../../src/protocol.js';
import { MessageVersions } from '../../../src/routing/message-versions.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { RecordVersions } from '../../../src/state/record-versions.js';
import { EtcdUpgradeRegistry } from '../../../src/upgrade/etcd-upgrade-registry.js';
import { MigrationRunner } from '../../../src/upgrade/migration.js';
import { PresenceKeeper } from '../../../src/upgrade/presence-keeper.js';
import type { PresenceRecord } from '../../../src/upgrade/records.js';
import { UpgradeService } from '../../../src/upgrade/service.js';
import { UpgradeView } from '../../../src/upgrade/view.js';
import { Registry } from 'prom-client';
import { newVolume } from '../../contract/state-store.contract.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { waitFor } from '../../support/wait.js';
import { etcdConfig } from '../locks/fixtures.js';
import { ADD_TIER, RELEASE_1, RELEASE_2 } from './releases.js';


describe('rolling upgrade on etcd (presence, negotiation, finalize, migration)', () => {
  let ctx: EtcdTestContext;
  let client: Etcd3;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(() => {
    ctx = useEtcd();
    client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    client.close();
    await ctx.close();
  });

  function registry(host: string): EtcdUpgradeRegistry {
    const r = new EtcdUpgradeRegistry({
      client,
      keys: new KeyLayout(ctx.prefix),
      clock: systemClock,
      logger: silentLogger(),
      retry: DEFAULT_ETCD_RETRY,
      openSession: (signal) => EtcdSession.open({ client, host, leaseTtlMs: 3_000, leaseMarginMs: 900, callTimeoutMs: 2_000, ...(signal ? { signal } : {}) }),
    });
    closers.push(() => r.close());
    return r;
  }

  function record(host: string, own: ProtocolSupport, build: string, roles: PresenceRecord['roles'] = ['worker']): PresenceRecord {
    return { host, cluster: 'ceph@rbd', roles, build, revision: 'test', messages: own.messages, schema: own.schema, pid: process.pid, startedAtMs: Date.now() };
  }

  async function start(host: string, own: ProtocolSupport, build: string, roles: PresenceRecord['roles'] = ['worker']) {
    const reg = registry(host);
    const keeper = new PresenceKeeper({ registry: reg, record: record(host, own, build, roles), own, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    const schema = await keeper.start();
    closers.push(() => keeper.close());
    return { reg, keeper, schema };
  }

  it('follows the living: the old process pins the message version until its presence goes, then finalize raises the schema and migrates', async () => {
    // Records written by release 1 before the roll.
    const keys = new KeyLayout(ctx.prefix);
    const oldStore = new EtcdStateStore({ client, keys, clock: new ManualClock(1_000), metrics: createStateMetrics(new Registry()), logger: silentLogger(), versions: new RecordVersions(RELEASE_1.schema, 1, []) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await oldStore.create('volume', { record: newVolume({ name: `v${i}` }), op: { kind: 'create_volume' } });
      if (!created.ok) throw new Error('create failed');
      ids.push(created.record.id);
    }

    const old = await start('old@rbd', RELEASE_1, '0.1.0');
    // An API-only process of the new release: it counts as a reader too.
    await start('api@rbd', RELEASE_2, '0.2.0', ['api']);
    const worker = await start('new@rbd', RELEASE_2, '0.2.0');
    expect(old.schema.version).toBe(1);

    // The new worker's view: records at schema 1 and messages at 1, pinned by the old process.
    const records = new RecordVersions(RELEASE_2.schema, 1, [ADD_TIER]);
    const messages = new MessageVersions(RELEASE_2.messages);
    const view = new UpgradeView({ registry: worker.reg, own: RELEASE_2, cluster: 'ceph@rbd', records, messages, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    closers.push(() => view.close());
    view.start();
    await view.ready();
    await waitFor(() => view.processes.length === 3);
    expect(messages.writeVersion('ceph@rbd')).toBe(1);
    expect(view.workerMessageVersion('ceph@rbd')).toBe(1);

    // What the new member writes now, the old build reads.
    const newStore = new EtcdStateStore({ client, keys, clock: new ManualClock(2_000), metrics: createStateMetrics(new Registry()), logger: silentLogger(), versions: records });
    const written = await newStore.create('volume', { record: { ...newVolume({ name: 'from-new' }), tier: 'gold' } as ReturnType<typeof newVolume>, op: { kind: 'create_volume' } });
    if (!written.ok) throw new Error('create failed');
    ids.push(written.record.id);
    expect(await oldStore.get({ type: 'volume', id: written.record.id })).toMatchObject({ name: 'from-new' });
    expect(JSON.parse((await ctx.client.get(keys.resource('volume', written.record.id)).string())!)).toMatchObject({ v: 1 });

    const runner = new MigrationRunner({ registry: worker.reg, codec: new RecordVersions(RELEASE_2.schema, 2, [ADD_TIER]), batchSize: 2, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    const service = new UpgradeService({ registry: worker.reg, own: RELEASE_2, record: record('new@rbd', RELEASE_2, '0.2.0'), presence: () => worker.keeper.presence, runner, clock: systemClock, logger: silentLogger() });
    closers.push(() => service.close());

    // Finalize is refused while the old process lives, naming it.
    const refused = await service.finalize();
    expect(refused.ok).toBe(false);
    if (refused.ok) throw new Error('unreachable');
    expect(refused.check.blockedBy.map((p) => p.host)).toEqual(['old@rbd']);
    expect(refused.check.reasons.join('; ')).toMatch(/process old@rbd\/[0-9a-f]+ \(hearth 0\.1\.0, worker\) reads schemas 1/);
    const status = await service.status();
    expect(status.messages.find((m) => m.cluster === 'ceph@rbd')).toMatchObject({ version: 1, workerVersion: 1 });

    // The old process stops: its presence is revoked, and the version moves on that event.
    await old.keeper.close();
    await waitFor(() => messages.writeVersion('ceph@rbd') === 2);
    expect(view.workerMessageVersion('ceph@rbd')).toBe(2);

    const raised = await service.finalize();
    expect(raised).toMatchObject({ ok: true, raised: true, schema: { version: 2 } });
    await waitFor(async () => (await service.status()).schema.migration?.done === true, { timeoutMs: 30_000 });
    await waitFor(() => records.writing === 2);
    for (const id of ids) {
      const stored = JSON.parse((await ctx.client.get(keys.resource('volume', id)).string())!) as Record<string, unknown>;
      // Written at schema 1 before finalize, the new field was not kept (down drops it): all get the default.
      expect(stored).toMatchObject({ v: 2, tier: 'standard' });
      expect(JSON.parse((await ctx.client.get(keys.op('volume', id)).string())!)).toMatchObject({ v: 2 });
    }
    expect((await service.status()).schema.migration).toMatchObject({ from: 1, to: 2, done: true, migrated: ids.length * 2 });

    // The old build refuses to start now, naming both.
    const again = registry('old@rbd');
    const keeper = new PresenceKeeper({ registry: again, record: record('old@rbd', RELEASE_1, '0.1.0'), own: RELEASE_1, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    const err = await keeper.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolMismatchError);
    expect((err as Error).message).toMatch(/the cluster's record schema is 2, and this build \(hearth 0\.1\.0\) reads and writes schemas 1/);
    // And it never announced itself.
    expect((await service.status()).processes.map((p) => p.host).sort()).toEqual(['api@rbd', 'new@rbd']);
    // A record the old build reads now is a typed error naming it; nothing is written.
    await expect(oldStore.get({ type: 'volume', id: ids[0]! })).rejects.toThrow(/version 2 is newer than this build reads \(1\)/);
  });
});
