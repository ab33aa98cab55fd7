import type { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import type { OwnerRef } from '../../../src/identity.js';
import { EtcdFailoverLedger } from '../../../src/orphans/etcd-failover-ledger.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { failoverLedgerContract } from '../../contract/failover-ledger.contract.js';
import { useEtcd } from '../../support/context.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';

/** A taker: an incarnation with a real session lease. */
async function openTaker(client: Etcd3, host: string): Promise<{ owner: OwnerRef; session: EtcdSession }> {
  const session = await EtcdSession.open({ client, host, leaseTtlMs: 5_000, leaseMarginMs: 1_000, callTimeoutMs: 2_000 });
  return { owner: { host, incarnation: session.incarnation, aliveRevision: '0' }, session };
}

failoverLedgerContract('etcd (failovers/<incarnation> on the taker\'s lease)', async () => {
  const ctx = useEtcd();
  const clients: Etcd3[] = [];
  const sessions: EtcdSession[] = [];
  let n = 0;
  return {
    ledger: async () => {
      const client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
      clients.push(client);
      return new EtcdFailoverLedger({ client, keys: new KeyLayout(ctx.prefix) });
    },
    taker: async () => {
      const { owner, session } = await openTaker(ctx.client, `taker-${++n}@be`);
      sessions.push(session);
      return owner;
    },
    close: async () => {
      await Promise.all(sessions.map((s) => s.close()));
      for (const c of clients) c.close();
      await ctx.close();
    },
  };
});

describe('EtcdFailoverLedger', () => {
  it('keeps the record on the taker\'s lease: gone when the taker\'s session ends (nothing accumulates); a taker without a lease records nothing', async () => {
    const ctx = useEtcd();
    const keys = new KeyLayout(ctx.prefix);
    const ledger = new EtcdFailoverLedger({ client: ctx.client, keys });
    const a = await openTaker(ctx.client, 'a@be');
    expect(await ledger.first('dead@be:9', a.owner)).toBe(true);
    expect((await ctx.client.get(keys.failover('dead@be:9')).string())).toBe(a.owner.incarnation);
    await a.session.close();
    expect(await ctx.client.getAll().prefix(`${ctx.prefix}/failovers/`).keys()).toEqual([]);
    // The first taker died too: whoever takes the rest over now counts a failover again.
    const b = await openTaker(ctx.client, 'b@be');
    expect(await ledger.first('dead@be:9', b.owner)).toBe(true);
    // A taker whose lease is gone (it died meanwhile) counts nothing.
    await b.session.close();
    expect(await ledger.first('dead@be:10', b.owner)).toBe(false);
    await ctx.close();
  });
});
