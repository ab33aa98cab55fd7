/**
 * A watch of one cluster record on etcd: its value now, then every change, resumed after a lost
 * watch by a fresh read. What a worker caches to know, without a read per op, whether its
 * cluster is frozen and which backend and epoch it serves.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { EventQueue } from '../concurrency/event-queue.js';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterRecordEvent } from './membership.js';
import { type ClusterRecord, decodeCluster } from './records.js';

/** What {@link watchClusterRecord} needs. */
export interface ClusterWatchOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/**
 * The record of cluster `name` (undefined while it does not exist or names another binary),
 * first as read, then after every change, until `signal` aborts.
 *
 * Failure semantics: a watch that breaks (etcd restarted, compacted, disconnected) is followed
 * by a fresh read and a new watch from there, waiting `retry` between failed reads; the last
 * value stays the caller's meanwhile. Nothing is polled.
 */
export function watchClusterRecord(o: ClusterWatchOptions, name: string, binary: string, signal: AbortSignal): AsyncIterable<ClusterRecordEvent> {
  const queue = new EventQueue<ClusterRecordEvent>(signal);
  const key = o.keys.cluster(name);
  const decode = (kv: IKeyValue | undefined): ClusterRecord | undefined => {
    if (!kv) return undefined;
    try {
      const record = decodeCluster(kv.value.toString());
      return record.binary === binary ? record : undefined;
    } catch (err) {
      o.logger.warn({ err, key }, 'ignoring a malformed cluster record');
      return undefined;
    }
  };
  void (async () => {
    let failures = 0;
    while (!signal.aborted) {
      let revision: string;
      try {
        const res = await o.client.get(key).exec();
        revision = res.header.revision;
        queue.push({ record: decode(res.kvs[0]) });
        failures = 0;
      } catch (err) {
        o.logger.warn({ err: fromEtcdError(err, `read cluster ${name}`) }, 'cluster record watch cannot read the record; retrying');
        if (!(await o.retry.wait(++failures, o.clock, signal))) break;
        continue;
      }
      await followChanges(o, key, BigInt(revision) + 1n, signal, (kv) => queue.push({ record: decode(kv) }));
    }
    queue.end();
  })();
  return queue;
}

/** Watches `key` from `fromRevision` until the watch breaks or `signal` aborts. */
async function followChanges(o: ClusterWatchOptions, key: string, fromRevision: bigint, signal: AbortSignal, emit: (kv: IKeyValue | undefined) => void): Promise<void> {
  let watcher;
  try {
    watcher = await o.client.watch().key(key).startRevision(fromRevision.toString()).create();
  } catch (err) {
    o.logger.warn({ err: fromEtcdError(err, `watch ${key}`) }, 'cluster record watch cannot start; reading again');
    await o.retry.wait(1, o.clock, signal);
    return;
  }
  try {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      if (signal.aborted) return done();
      signal.addEventListener('abort', done, { once: true });
      watcher.on('put', (kv) => emit(kv));
      watcher.on('delete', () => emit(undefined));
      watcher.on('error', done);
      watcher.on('disconnected', done);
    });
  } finally {
    await watcher.cancel().catch(() => undefined);
  }
}
