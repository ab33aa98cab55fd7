import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdFenceQueue } from '../../../src/fencing/etcd-fence-queue.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { describeFenceQueue } from '../../contract/fence-queue.contract.js';
import { useEtcd } from '../../support/context.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';
import { TestSession } from '../../support/test-session.js';

describeFenceQueue('etcd', async () => {
  const ctx = useEtcd();
  const client: Etcd3 = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
  const keys = new KeyLayout(ctx.prefix);
  const membership = new EtcdMembership({ client, keys, clock: systemClock, logger: silentLogger() });
  const sessions: TestSession[] = [];
  return {
    queue: new EtcdFenceQueue({ client, keys, logger: silentLogger(), now: () => Date.now() }),
    membership,
    join: async (host) => {
      const session = await TestSession.etcd(ctx.client, host, 5_000);
      sessions.push(session);
      const member = await membership.join({ identity: { cluster: 'c1@be', host, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session });
      return { member, end: () => session.close() };
    },
    close: async () => {
      await Promise.all(sessions.map((s) => s.close()));
      await membership.close();
      client.close();
      await ctx.close();
    },
  };
});
