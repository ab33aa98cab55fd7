import { guardCompare, releaseOps } from '../../../src/etcd/guards.js';
import { lockServiceContract } from '../../contract/lock-service.contract.js';
import { useEtcd } from '../../support/context.js';
import { startWorker, waitQueued, type Worker } from './fixtures.js';

lockServiceContract('etcd (fair lock on session leases)', true, async () => {
  const ctx = useEtcd();
  const workers: Worker[] = [];
  return {
    contender: async () => {
      const worker = await startWorker({ endpoints: ctx.endpoints, prefix: ctx.prefix });
      workers.push(worker);
      return worker.locks;
    },
    queued: (name, count) => waitQueued(ctx.client, ctx.prefix, name, count),
    commit: async (fence) => (await ctx.client.kv.txn({ compare: fence.guards.map(guardCompare), success: releaseOps(fence.guards), failure: [] })).succeeded,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await ctx.close();
    },
  };
});
