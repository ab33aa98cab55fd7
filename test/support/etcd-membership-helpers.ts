import type { Etcd3 } from 'etcd3';
import type { Config } from '../../src/config/schema.js';
import type { Fence } from '../../src/fence.js';
import { guardCompare } from '../../src/etcd/guards.js';

/** The etcd slice of hearth's configuration for a test prefix. */
export function etcdConfig(endpoints: string[], prefix: string): Config['etcd'] {
  return { endpoints, prefix, username: '', password: '', passwordFile: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 3_000 };
}

/** Whether a write guarded by `fence` would commit now: its guards compiled into a txn. */
export async function fenceHoldsOnEtcd(client: Etcd3, fence: Fence): Promise<boolean> {
  if (!fence.holds()) return false;
  if (fence.guards.length === 0) return true;
  return (await client.kv.txn({ compare: fence.guards.map(guardCompare), success: [], failure: [] })).succeeded;
}
