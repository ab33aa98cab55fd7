import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCensus } from '../../../src/census/etcd-census.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { Registry } from 'prom-client';
import { describeCensus } from '../../contract/census.contract.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';

describeCensus('etcd', async (clock) => {
  const ctx = useEtcd();
  const client = createEtcdClient({ endpoints: ctx.endpoints, prefix: ctx.prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 5_000 });
  const keys = new KeyLayout(ctx.prefix);
  return {
    store: new EtcdStateStore({ client, keys, clock, metrics: createStateMetrics(new Registry()), logger: silentLogger() }),
    openCensus: () => new EtcdCensus({ client, keys, clock: systemClock, logger: silentLogger(), retry: Backoff.constant(50) }),
    cleanup: async () => {
      client.close();
      await ctx.close();
    },
  };
});

/**
 * The etcd census lists the records once (in pages, at one revision) and then follows a watch:
 * no periodic listing, whatever the number of records, and no entry per record.
 */
describe('census on etcd', () => {
  let ctx: EtcdTestContext;
  let client: Etcd3;
  let keys: KeyLayout;
  beforeAll(() => {
    ctx = useEtcd();
    client = new Etcd3({ hosts: [...ctx.endpoints] });
    keys = new KeyLayout(ctx.prefix);
  });
  afterAll(async () => {
    client.close();
    await ctx.close();
  });

  const put = (type: string, id: string, status: string) => client.put(keys.resource(type, id)).value(JSON.stringify({ id, status }));

  it('counts 2,500 records listed in pages, then follows puts and deletes from the watch', async () => {
    for (let batch = 0; batch < 25; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => put('volume', `v-${batch}-${i}`, i % 4 === 0 ? 'error' : 'available')));
    }
    await put('snapshot', 's-1', 'creating');
    await client.put(keys.op('snapshot', 's-1')).value(JSON.stringify({ kind: 'create_snapshot', cluster: 'c@be', createdAt: 1_000 }));
    const census = new EtcdCensus({ client, keys, clock: systemClock, logger: silentLogger(), retry: Backoff.constant(50) });
    const counts = async () => Object.fromEntries((await census.snapshot()).resources.filter((r) => r.count > 0).map((r) => [`${r.type} ${r.status}`, r.count]));
    try {
      await census.start(new AbortController().signal);
      expect(await counts()).toEqual({ 'volume available': 1875, 'volume error': 625, 'snapshot creating': 1 });
      expect((await census.snapshot()).operations).toEqual([{ cluster: 'c@be', kind: 'create_snapshot', count: 1, oldestCreatedAtMs: 1_000 }]);

      await put('volume', 'v-0-0', 'deleting');
      await client.delete().key(keys.resource('volume', 'v-0-1'));
      await put('volume', 'new', 'creating');
      await client.delete().key(keys.op('snapshot', 's-1'));
      await put('snapshot', 's-1', 'available');
      await expect
        .poll(counts)
        .toEqual({ 'volume available': 1874, 'volume error': 624, 'volume deleting': 1, 'volume creating': 1, 'snapshot available': 1 });
      // Records and ops are followed by two watches, so the op's delete may be applied after the records' changes.
      await expect.poll(async () => (await census.snapshot()).operations).toEqual([]);
    } finally {
      await census.close();
    }
  });
});
