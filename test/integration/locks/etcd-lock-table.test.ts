import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdLockTable } from '../../../src/locks/etcd-lock-table.js';
import { lockTableContract } from '../../contract/lock-table.contract.js';
import { useEtcd } from '../../support/context.js';
import { startWorker, waitQueued, type Worker } from './fixtures.js';

lockTableContract('etcd (the cluster\'s lock keys)', true, async () => {
  const ctx = useEtcd();
  const workers: Worker[] = [];
  let n = 0;
  return {
    table: new EtcdLockTable({ client: ctx.client, keys: new KeyLayout(ctx.prefix) }),
    contender: async () => {
      const host = `table-${++n}@be`;
      const worker = await startWorker({ endpoints: ctx.endpoints, prefix: ctx.prefix, host });
      workers.push(worker);
      return { locks: worker.locks, incarnation: worker.session.incarnation, host };
    },
    queued: (name, count) => waitQueued(ctx.client, ctx.prefix, name, count),
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await ctx.close();
    },
  };
});
