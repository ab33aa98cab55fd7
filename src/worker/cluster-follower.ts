/**
 * What a worker knows of its cluster record, kept from a watch (never read per op): whether the
 * cluster is frozen, and which backend and epoch it serves — applied to the driver
 * (`replication.serve`) before the worker takes its next job. docs/membership.md "Replication".
 */
import type { DriverReplication } from '../drivers/volume-driver.js';
import type { Fence } from '../fence.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Membership } from '../membership/membership.js';
import type { MembershipMetrics } from '../membership/metrics.js';
import type { ClusterRecord } from '../membership/records.js';
import { servedBackend } from '../membership/replication.js';
import type { Logger } from '../observability/logger.js';
import type { EpochSource } from './operation-runner.js';

/** What a {@link ClusterFollower} needs. */
export interface ClusterFollowerOptions {
  readonly membership: Pick<Membership, 'watchCluster' | 'epochFence'>;
  readonly cluster: string;
  readonly binary: string;
  /** The driver's replication; absent: nothing to serve, the epoch is the record's. */
  readonly replication?: DriverReplication;
  readonly metrics?: Pick<MembershipMetrics, 'observeCluster'>;
  readonly clock: Clock;
  readonly retry: Backoff;
  readonly logger: Logger;
}

/**
 * Follows the cluster record. `takesJobs` is false until the first record is applied, while the
 * cluster is frozen, and while the driver does not serve the backend and epoch the record names
 * (a failed `serve` is retried with the `retry` waits). A job already queued when the cluster
 * froze stays in its queue until the thaw: the worker stops consuming, as while its backend is
 * down. Runs take {@link current} as their epoch (it is an {@link EpochSource}).
 */
export class ClusterFollower implements EpochSource {
  private readonly stop = new AbortController();
  private readonly listeners = new Set<() => void>();
  private readonly recordListeners = new Set<(record: ClusterRecord) => void>();
  private recordValue: ClusterRecord | undefined;
  private applied: { backendId: string; epoch: number } | undefined;
  private first: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private applying: Promise<void> | undefined;
  /** A record came that is not applied yet. */
  private dirty = false;

  constructor(private readonly o: ClusterFollowerOptions) {}

  /** Starts following; resolves once the first record is applied (or `signal` aborts). */
  start(signal?: AbortSignal): Promise<void> {
    this.first ??= new Promise<void>((resolve) => {
      const done = (): void => resolve();
      signal?.addEventListener('abort', done, { once: true });
      this.onChange(done);
      this.loop = this.follow();
    });
    return this.first;
  }

  /** The record as last seen. */
  get record(): ClusterRecord | undefined {
    return this.recordValue;
  }

  get frozen(): boolean {
    return this.recordValue?.frozen ?? false;
  }

  /** Whether the worker may take jobs now, as far as its cluster goes. */
  get takesJobs(): boolean {
    return this.applied !== undefined && !this.frozen;
  }

  /** Why not, for logs and readiness; '' when it does. */
  get reason(): string {
    if (this.applied === undefined) return 'the cluster record is not applied yet';
    return this.frozen ? `cluster ${this.o.cluster} is frozen` : '';
  }

  current(): number {
    return this.applied?.epoch ?? 0;
  }

  fence(epoch: number): Fence {
    return this.o.membership.epochFence(this.o.cluster, epoch);
  }

  /** Calls `listener` when `takesJobs` may have changed; returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with every record seen (after it was applied). */
  onRecord(listener: (record: ClusterRecord) => void): () => void {
    this.recordListeners.add(listener);
    return () => this.recordListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private async follow(): Promise<void> {
    const { membership, cluster, binary, logger } = this.o;
    try {
      for await (const { record } of membership.watchCluster(cluster, binary, this.stop.signal)) {
        this.recordValue = record;
        if (record) this.o.metrics?.observeCluster(record);
        this.kick();
      }
    } catch (err) {
      if (!this.stop.signal.aborted) logger.error({ err, cluster }, 'following the cluster record failed');
    }
    await this.applying;
  }

  /** Applies the newest record; one application at a time, and a newer record supersedes one still retrying. */
  private kick(): void {
    this.dirty = true;
    this.applying ??= (async () => {
      while (this.dirty && !this.stop.signal.aborted) {
        this.dirty = false;
        const record = this.recordValue;
        await this.apply(record);
        this.changed();
        if (record) for (const l of this.recordListeners) l(record);
      }
      this.applying = undefined;
    })();
  }

  /** Makes the driver serve what `record` names, retrying until it does or a newer record comes. */
  private async apply(record: ClusterRecord | undefined): Promise<void> {
    const want = record ? servedBackend(record) : { backendId: 'default', epoch: 0 };
    if (this.applied?.backendId === want.backendId && this.applied.epoch === want.epoch) return;
    const replication = this.o.replication;
    if (!replication) {
      this.applied = want;
      return;
    }
    for (let failures = 0; !this.stop.signal.aborted; ) {
      try {
        await replication.serve(want.backendId, want.epoch);
        if (this.applied) this.o.logger.info({ cluster: this.o.cluster, backend: want.backendId, epoch: want.epoch, was: this.applied }, 'serving the backend the cluster record names');
        else this.o.logger.info({ cluster: this.o.cluster, backend: want.backendId, epoch: want.epoch }, 'serving the backend the cluster record names');
        this.applied = want;
        return;
      } catch (err) {
        this.o.logger.error({ err, cluster: this.o.cluster, backend: want.backendId, epoch: want.epoch }, 'the driver cannot serve the backend the cluster record names; taking no jobs until it does');
        this.applied = undefined;
        this.changed();
        if (!(await this.o.retry.wait(++failures, this.o.clock, this.stop.signal))) return;
        // A newer record came meanwhile: apply that one instead.
        if (this.dirty) return;
      }
    }
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}
