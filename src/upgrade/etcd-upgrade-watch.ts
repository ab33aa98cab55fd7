import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { EventQueue } from '../concurrency/event-queue.js';
import { fromEtcdError } from '../etcd/errors.js';
import { type KeyLayout, prefixEnd } from '../etcd/keys.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { decodeUpgradeKeys, processOf, schemaOf, upgradeKeyOf } from './etcd-upgrade-keys.js';
import type { LiveProcess } from './records.js';
import type { UpgradeEvent } from './registry.js';

/** What {@link watchUpgrade} needs. */
export interface UpgradeWatchOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/**
 * Watches `upgrade/` and turns key events into upgrade events: it lists the prefix first
 * (`synced`), then watches from the list's revision + 1, so nothing between list and watch is
 * lost. The etcd3 watcher resumes from its last revision after a disconnection; when etcd
 * cancels the watch (its revision was compacted away) it lists again and reports `synced`, which
 * replaces what the consumer knew. Nothing is polled.
 *
 * Failure semantics: while etcd cannot be reached it retries the list with the `retry` waits
 * until `signal` aborts; iteration ends then.
 */
export function watchUpgrade(options: UpgradeWatchOptions, signal: AbortSignal): AsyncIterable<UpgradeEvent> {
  const queue = new EventQueue<UpgradeEvent>(signal);
  void run(options, queue, signal).catch((err: unknown) => queue.fail(err));
  return queue;
}

async function run(options: UpgradeWatchOptions, queue: EventQueue<UpgradeEvent>, signal: AbortSignal): Promise<void> {
  const { client, keys, logger } = options;
  const prefix = keys.upgrade();
  let failures = 0;
  while (!signal.aborted && !queue.closed) {
    let revision: bigint;
    const known = new Map<string, LiveProcess>();
    try {
      const res = await client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) });
      const snapshot = decodeUpgradeKeys(keys, res.kvs, res.header.revision, logger);
      for (const p of snapshot.processes) known.set(p.id, p);
      queue.push({ type: 'synced', snapshot });
      revision = BigInt(res.header.revision);
      failures = 0;
    } catch (err) {
      logger.warn({ err: fromEtcdError(err, 'list processes') }, 'upgrade watch cannot list processes; retrying');
      if (!(await options.retry.wait(++failures, options.clock, signal))) return;
      continue;
    }
    await follow(options, queue, known, revision + 1n, signal);
  }
}

/** Follows the watch from `start` until it breaks (resolves) or `signal` aborts. */
function follow(options: UpgradeWatchOptions, queue: EventQueue<UpgradeEvent>, known: Map<string, LiveProcess>, start: bigint, signal: AbortSignal): Promise<void> {
  const { client, keys, logger } = options;
  const watcher: Watcher = client.watch().prefix(keys.upgrade()).startRevision(start.toString()).watcher();
  let next = start;
  const seen = (kv: IKeyValue): void => {
    const after = BigInt(kv.mod_revision) + 1n;
    if (after > next) next = after;
  };
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', finish);
      watcher.cancel().catch(() => undefined);
      resolve();
    };
    signal.addEventListener('abort', finish, { once: true });
    if (signal.aborted) return finish();
    watcher.on('put', (kv) => {
      seen(kv);
      const key = kv.key.toString();
      const what = upgradeKeyOf(keys, key);
      if (what.kind === 'schema') {
        const schema = schemaOf(key, kv, logger);
        if (schema) queue.push({ type: 'schema-changed', schema, revision: kv.mod_revision });
      } else if (what.kind === 'process') {
        const p = processOf(keys, kv, logger);
        if (!p) return;
        const joined = !known.has(p.id);
        known.set(p.id, p);
        if (joined) queue.push({ type: 'process-joined', process: p, revision: kv.mod_revision });
      }
    });
    watcher.on('delete', (kv) => {
      seen(kv);
      const what = upgradeKeyOf(keys, kv.key.toString());
      if (what.kind !== 'process') return;
      const old = known.get(what.id);
      if (!old) return;
      known.delete(what.id);
      queue.push({ type: 'process-left', process: old, revision: kv.mod_revision });
    });
    watcher.on('disconnected', () => {
      // Resume from the first revision not delivered yet (see membership/etcd-watch.ts).
      (watcher.request as { start_revision?: number | string }).start_revision = next.toString();
    });
    watcher.on('error', (err) => {
      logger.info({ err, revision: next.toString() }, 'upgrade watch was cancelled; listing again');
      finish();
    });
  });
}
