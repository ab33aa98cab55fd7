import type { Etcd3 } from 'etcd3';
import type { Config } from '../../src/config/schema.js';
import type { Fence } from '../../src/fence.js';

/** The etcd slice of hearth's configuration for a test prefix. */
export function etcdConfig(endpoints: string[], prefix: string): Config['etcd'] {
  return { endpoints, prefix, username: '', password: '', passwordFile: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 3_000 };
}

/** Whether a write guarded by `fence` would commit now: its guards compiled into a txn. */
export async function fenceHoldsOnEtcd(client: Etcd3, fence: Fence): Promise<boolean> {
  if (!fence.holds()) return false;
  const [first, ...rest] = fence.guards;
  if (!first) return true;
  const op = (expect: 'equal' | 'notEqual') => (expect === 'equal' ? '==' : '!=');
  let txn = client.if(first.key, 'Create', op(first.expect), first.createRevision);
  for (const g of rest) txn = txn.and(g.key, 'Create', op(g.expect), g.createRevision);
  return (await txn.commit()).succeeded;
}
