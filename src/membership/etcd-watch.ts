import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { EventQueue } from '../concurrency/event-queue.js';
import type { MembershipEvent } from './membership.js';
import { type AliveMember, decodeAlive } from './records.js';

/** What {@link watchAlive} needs. */
export interface AliveWatchOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Waits before re-listing after etcd could not be reached. */
  readonly retry: Backoff;
}

type SyncReason = Extract<MembershipEvent, { type: 'members-synced' }>['reason'];

/**
 * Watches `alive/` and turns key events into membership events.
 *
 * It lists the prefix first (`members-synced`, reason `initial`), then watches from the list's
 * revision + 1, so no change between list and watch is lost. The etcd3 watcher resumes from
 * its last revision after a disconnection. When etcd cancels the watch — above all because
 * that revision was compacted away — it lists again, emits the difference against what it
 * knew as `member-left` / `member-joined`, then `members-synced` with the reason, and watches
 * from the new revision. Nothing is polled.
 *
 * Failure semantics: while etcd cannot be reached it retries the list with the `retry` waits
 * until `signal` aborts; the consumer sees no events meanwhile, and the re-list then reports
 * every change it missed. Iteration ends when `signal` aborts.
 */
export function watchAlive(options: AliveWatchOptions, signal: AbortSignal): AsyncIterable<MembershipEvent> {
  const queue = new EventQueue<MembershipEvent>(signal);
  new AliveWatch(options, queue, signal).run().catch((err: unknown) => queue.fail(err));
  return queue;
}

class AliveWatch {
  private known = new Map<string, AliveMember>();
  private readonly prefix: string;

  constructor(
    private readonly options: AliveWatchOptions,
    private readonly queue: EventQueue<MembershipEvent>,
    private readonly signal: AbortSignal,
  ) {
    this.prefix = options.keys.aliveAll();
  }

  async run(): Promise<void> {
    let reason: SyncReason = 'initial';
    let failures = 0;
    for (;;) {
      if (!this.live()) return;
      let revision: bigint;
      try {
        revision = await this.relist(reason);
        failures = 0;
      } catch (err) {
        this.options.logger.warn({ err: fromEtcdError(err, 'list alive members') }, 'membership watch cannot list members; retrying');
        if (!(await this.options.retry.wait(++failures, this.options.clock, this.signal))) return;
        continue;
      }
      const broke = await this.follow(revision + 1n);
      if (broke === undefined) return;
      reason = broke;
    }
  }

  private live(): boolean {
    return !this.signal.aborted && !this.queue.closed;
  }

  private decode(kv: IKeyValue): AliveMember | undefined {
    const host = kv.key.toString().slice(this.prefix.length);
    try {
      const record = decodeAlive(kv.value.toString());
      return { ...record, host, aliveRevision: kv.create_revision };
    } catch (err) {
      this.options.logger.warn({ err, key: kv.key.toString() }, 'ignoring a malformed alive entry');
      return undefined;
    }
  }

  /** Lists `alive/`, emits the difference and `members-synced`; returns the list's revision. */
  private async relist(reason: SyncReason): Promise<bigint> {
    const res = await this.options.client.getAll().prefix(this.prefix).exec();
    const revision = res.header.revision;
    const current = new Map<string, AliveMember>();
    for (const kv of res.kvs) {
      const m = this.decode(kv);
      if (m) current.set(m.host, m);
    }
    if (reason !== 'initial') {
      for (const [host, old] of this.known) {
        if (current.get(host)?.aliveRevision !== old.aliveRevision) this.queue.push({ type: 'member-left', member: old, revision });
      }
      for (const [host, m] of current) {
        if (this.known.get(host)?.aliveRevision !== m.aliveRevision) this.queue.push({ type: 'member-joined', member: m, revision });
      }
    }
    this.known = current;
    this.queue.push({ type: 'members-synced', members: [...current.values()], revision, reason });
    return BigInt(revision);
  }

  private onPut(kv: IKeyValue): void {
    const m = this.decode(kv);
    if (!m) return;
    const revision = kv.mod_revision;
    const old = this.known.get(m.host);
    this.known.set(m.host, m);
    if (old?.aliveRevision === m.aliveRevision) {
      this.queue.push({ type: 'member-heartbeat', member: m, revision });
      return;
    }
    // A new incarnation replaced one whose deletion we never saw (cannot happen without a gap).
    if (old) this.queue.push({ type: 'member-left', member: old, revision });
    this.queue.push({ type: 'member-joined', member: m, revision });
  }

  private onDelete(kv: IKeyValue): void {
    const host = kv.key.toString().slice(this.prefix.length);
    const old = this.known.get(host);
    if (!old) return;
    this.known.delete(host);
    this.queue.push({ type: 'member-left', member: old, revision: kv.mod_revision });
  }

  /**
   * Follows the watch from `start`; resolves with why it must re-list, or undefined once the
   * signal aborted.
   */
  private follow(start: bigint): Promise<SyncReason | undefined> {
    const watcher: Watcher = this.options.client.watch().prefix(this.prefix).startRevision(start.toString()).watcher();
    // The first revision not yet delivered to us. etcd3 advances its own resume revision to the
    // header of the watch-created response, i.e. past events still in flight; a disconnection
    // at that moment would skip them, so we put our own back before it reconnects.
    let next = start;
    const seen = (kv: IKeyValue): void => {
      const after = BigInt(kv.mod_revision) + 1n;
      if (after > next) next = after;
    };
    return new Promise((resolve) => {
      let done = false;
      const finish = (reason: SyncReason | undefined): void => {
        if (done) return;
        done = true;
        this.signal.removeEventListener('abort', onAbort);
        watcher.cancel().catch(() => undefined);
        resolve(reason);
      };
      const onAbort = (): void => finish(undefined);
      this.signal.addEventListener('abort', onAbort, { once: true });
      if (this.signal.aborted) {
        finish(undefined);
        return;
      }
      watcher.on('put', (kv) => {
        seen(kv);
        this.onPut(kv);
      });
      watcher.on('delete', (kv) => {
        seen(kv);
        this.onDelete(kv);
      });
      watcher.on('disconnected', (err) => {
        (watcher.request as { start_revision?: number | string }).start_revision = next.toString();
        this.options.logger.debug({ err, revision: next.toString() }, 'membership watch disconnected; it resumes from its revision');
      });
      watcher.on('error', (err) => {
        void this.classify(next).then((reason) => {
          this.options.logger.info({ err, reason, revision: next.toString() }, 'membership watch was cancelled; re-listing');
          finish(reason);
        });
      });
    });
  }

  /** `compacted` when revision `next` is no longer in etcd's history. */
  private async classify(next: bigint): Promise<SyncReason> {
    try {
      await this.options.client.getAll().prefix(this.prefix).revision(next.toString()).count();
      return 'watch-error';
    } catch (err) {
      return /compacted/i.test(err instanceof Error ? err.message : String(err)) ? 'compacted' : 'watch-error';
    }
  }
}
