import type { Etcd3 } from 'etcd3';
import { AbortedError } from '../errors.js';
import { fromEtcdError } from '../etcd/errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import { byName, hostOfIncarnation, type LockEntry, type LockTable } from './lock-table.js';

/** What {@link EtcdLockTable} reads. */
export interface EtcdLockTableOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
}

/**
 * The cluster's locks, read from etcd under `<prefix>/locks/`: each lock's contenders are the
 * keys `<prefix>/locks/<name>/<leaseHex>`, the holder is the one with the lowest create revision
 * (the fair algorithm of `etcd-lock-ops.ts`), its value names its incarnation (empty for
 * `etcdctl lock`), and the others are waiters. One range read at one revision.
 *
 * Failure semantics: etcd unreachable → a retryable `BackendUnavailableError`; nothing cached.
 */
export class EtcdLockTable implements LockTable {
  readonly distributed = true;

  constructor(private readonly options: EtcdLockTableOptions) {}

  async list(signal?: AbortSignal): Promise<LockEntry[]> {
    if (signal?.aborted) throw new AbortedError('listing locks', { cause: signal.reason });
    const root = this.options.keys.locks();
    let kvs;
    try {
      kvs = (await this.options.client.getAll().prefix(root).exec()).kvs;
    } catch (err) {
      throw fromEtcdError(err, 'list locks');
    }
    const byLock = new Map<string, { holder: (typeof kvs)[number]; lease: string; contenders: number }>();
    for (const kv of kvs) {
      const rest = kv.key.toString().slice(root.length);
      const slash = rest.lastIndexOf('/');
      if (slash <= 0) continue;
      const name = rest.slice(0, slash);
      const entry = byLock.get(name);
      if (!entry) {
        byLock.set(name, { holder: kv, lease: rest.slice(slash + 1), contenders: 1 });
        continue;
      }
      entry.contenders++;
      if (BigInt(kv.create_revision) < BigInt(entry.holder.create_revision)) {
        entry.holder = kv;
        entry.lease = rest.slice(slash + 1);
      }
    }
    return [...byLock.entries()]
      .map(([name, { holder, lease, contenders }]): LockEntry => {
        const incarnation = holder.value.toString();
        return {
          name,
          holderHost: incarnation === '' ? null : hostOfIncarnation(incarnation),
          holderIncarnation: incarnation === '' ? null : incarnation,
          sinceMs: null,
          fencingRevision: holder.create_revision,
          lease,
          waiters: contenders - 1,
        };
      })
      .sort(byName);
  }
}
