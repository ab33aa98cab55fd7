// The data migration on a real etcd when a record cannot be read by the migrating build (one
// without a version field: damaged, or written by hand; a record at or above the target needs
// no migration and is left alone): every readable record is migrated, but the migration does
// not declare itself done — it is blocked, naming the record, the floor stays at the old schema —
// until an operator repairs or deletes the record and runs finalize again.
import type { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { ManualClock, systemClock } from '../../../src/lifecycle/clock.js';
import { DEFAULT_ETCD_RETRY } from '../../../src/lifecycle/retry.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { RecordVersions } from '../../../src/state/record-versions.js';
import { EtcdUpgradeRegistry } from '../../../src/upgrade/etcd-upgrade-registry.js';
import { MigrationRunner } from '../../../src/upgrade/migration.js';
import { PresenceKeeper } from '../../../src/upgrade/presence-keeper.js';
import { UpgradeService } from '../../../src/upgrade/service.js';
import { newVolume } from '../../contract/state-store.contract.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { waitFor } from '../../support/wait.js';
import { etcdConfig } from '../locks/fixtures.js';
import { ADD_TIER, RELEASE_2 } from './releases.js';


describe('a data migration that meets a record it cannot read', () => {
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

  it('migrates every readable record, stays blocked naming the other, and ends once it is gone', async () => {
    const keys = new KeyLayout(ctx.prefix);
    const store = new EtcdStateStore({ client, keys, clock: new ManualClock(1_000), metrics: createStateMetrics(new Registry()), logger: silentLogger(), versions: new RecordVersions() });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const created = await store.create('volume', { record: newVolume({ name: `v${i}` }), op: { kind: 'create_volume' } });
      if (!created.ok) throw new Error('create failed');
      ids.push(created.record.id);
    }
    // A damaged record: no version field, so no build can say which schema it has.
    const badKey = keys.resource('volume', '00000000-0000-4000-8000-0000000000bd');
    await ctx.client.put(badKey).value(JSON.stringify({ id: '00000000-0000-4000-8000-0000000000bd', name: 'written by hand' }));

    const reg = new EtcdUpgradeRegistry({
      client,
      keys,
      clock: systemClock,
      logger: silentLogger(),
      retry: DEFAULT_ETCD_RETRY,
      openSession: (signal) => EtcdSession.open({ client, host: 'new@rbd', leaseTtlMs: 3_000, leaseMarginMs: 900, callTimeoutMs: 2_000, ...(signal ? { signal } : {}) }),
    });
    closers.push(() => reg.close());
    const record = { host: 'new@rbd', cluster: 'ceph@rbd', roles: ['worker' as const], build: '0.2.0', revision: 'test', messages: RELEASE_2.messages, schema: RELEASE_2.schema, pid: process.pid, startedAtMs: Date.now() };
    const keeper = new PresenceKeeper({ registry: reg, record, own: RELEASE_2, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    await keeper.start();
    closers.push(() => keeper.close());
    const runner = new MigrationRunner({ registry: reg, codec: new RecordVersions(RELEASE_2.schema, 2, [ADD_TIER]), batchSize: 2, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    const service = new UpgradeService({ registry: reg, own: RELEASE_2, record, presence: () => keeper.presence, runner, clock: systemClock, logger: silentLogger() });
    closers.push(() => service.close());

    expect(await service.finalize()).toMatchObject({ ok: true, raised: true, schema: { version: 2 } });
    await waitFor(async () => (await service.status()).schema.migration?.blockedBy != null || undefined, { timeoutMs: 30_000, what: 'the migration blocked' });
    await waitFor(() => !runner.active, { timeoutMs: 10_000, what: 'the run stopped' });
    const blocked = (await service.status()).schema;
    expect(blocked.migration).toMatchObject({ from: 1, to: 2, done: false, blockedBy: { count: 1, keys: [badKey] }, completedAtMs: null });
    // Records below the new schema stay legal while it is not done.
    expect(blocked.floor).toBe(1);
    for (const id of ids) expect(JSON.parse((await ctx.client.get(keys.resource('volume', id)).string())!)).toMatchObject({ v: 2, tier: 'standard' });
    // Left as it was.
    expect(JSON.parse((await ctx.client.get(badKey).string())!)).toEqual({ id: '00000000-0000-4000-8000-0000000000bd', name: 'written by hand' });

    // The operator deletes it and finalizes again: the next pass finds nothing left.
    await ctx.client.delete().key(badKey);
    expect(await service.finalize()).toMatchObject({ ok: true, raised: false });
    await waitFor(async () => (await service.status()).schema.migration?.done === true || undefined, { timeoutMs: 30_000, what: 'the migration done' });
    const done = (await service.status()).schema;
    expect(done.migration).toMatchObject({ done: true, blockedBy: null });
    expect(done.floor).toBe(2);
  });
});
