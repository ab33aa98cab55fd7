import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { CheckResult } from '../ops/health.js';
import { formatRange, type ProtocolSupport } from '../protocol.js';
import type { MessageVersions } from '../routing/message-versions.js';
import type { RecordVersions } from '../state/record-versions.js';
import type { UpgradeMetrics } from './metrics.js';
import { mixedSince, negotiateMessages, workerMessageVersion } from './policy.js';
import type { LiveProcess, SchemaState } from './records.js';
import type { UpgradeEvent, UpgradeRegistry } from './registry.js';

/** What an {@link UpgradeView} needs. */
export interface UpgradeViewOptions {
  readonly registry: UpgradeRegistry;
  readonly own: ProtocolSupport;
  /** This process's cluster: its message version is logged and exported. */
  readonly cluster: string;
  /** The record codec: it writes at the finalized schema, followed here. */
  readonly records: RecordVersions;
  /** The bus's version choice: it follows this view once the view has synced. */
  readonly messages: MessageVersions;
  readonly metrics?: UpgradeMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/**
 * This process's live picture of the cluster's versions: every live process (from the
 * registry's watch) and the finalized schema. It feeds the bus's message version (the highest
 * every live process of the target cluster reads, recomputed on each join and leave: a process
 * that stops or dies stops pinning on the event of its leaving), the record codec's write
 * schema, and the metrics. Nothing is polled.
 *
 * Failure semantics: while the store cannot be reached the picture keeps its last state (the
 * watch resumes, or lists again and replaces it). Before the first sync the bus writes the
 * lowest version this build writes, which every release it may run beside reads.
 */
export class UpgradeView {
  private readonly processesById = new Map<string, LiveProcess>();
  private schemaValue: SchemaState | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  private readonly listeners = new Set<() => void>();
  private lastVersion: number | undefined;
  private beyond: string | undefined;

  constructor(private readonly options: UpgradeViewOptions) {}

  /** Starts following the registry's watch. Idempotent. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves once the first full picture arrived. */
  ready(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  get processes(): readonly LiveProcess[] {
    return [...this.processesById.values()];
  }

  get schema(): SchemaState | undefined {
    return this.schemaValue;
  }

  /** The message version to write to `cluster` (or its host `host`) now. */
  messageVersionFor(cluster: string, host?: string): number {
    return negotiateMessages(this.options.own.messages, this.processes, cluster, host).version;
  }

  /** The message version every live worker of `cluster` reads (the API's gate). */
  workerMessageVersion(cluster: string): number {
    return workerMessageVersion(this.options.own.messages, this.processes, cluster);
  }

  /** Since when each cluster seen has run mixed releases (null: one release). */
  mixed(): Map<string, number | null> {
    const byCluster = new Map<string, LiveProcess[]>();
    for (const p of this.processesById.values()) byCluster.set(p.cluster, [...(byCluster.get(p.cluster) ?? []), p]);
    return new Map([...byCluster].map(([cluster, ps]) => [cluster, mixedSince(ps)]));
  }

  /** `/livez`: fails once the cluster's schema is beyond this build (see PresenceKeeper). */
  liveness(): CheckResult {
    return this.beyond === undefined ? { ok: true } : { ok: false, detail: this.beyond };
  }

  /** Calls `listener` after every change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops following the watch. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const event of this.options.registry.watch(signal)) {
          failures = 0;
          this.apply(event);
        }
      } catch (err) {
        this.options.logger.warn({ err }, 'upgrade watch failed; watching again');
      }
      if (!(await this.options.retry.wait(++failures, this.options.clock, signal))) return;
    }
  }

  private apply(event: UpgradeEvent): void {
    let why: string;
    switch (event.type) {
      case 'synced':
        this.processesById.clear();
        for (const p of event.snapshot.processes) this.processesById.set(p.id, p);
        if (event.snapshot.schema) this.schemaValue = event.snapshot.schema;
        why = 'synced';
        break;
      case 'process-joined':
        this.processesById.set(event.process.id, event.process);
        why = `process ${event.process.id} (hearth ${event.process.build}) joined`;
        break;
      case 'process-left':
        this.processesById.delete(event.process.id);
        why = `process ${event.process.id} (hearth ${event.process.build}) left`;
        break;
      case 'schema-changed':
        this.schemaValue = event.schema;
        why = `record schema ${event.schema.version}`;
        break;
    }
    this.changed(why);
    if (!this.synced && event.type === 'synced') {
      this.synced = true;
      // From now on the bus writes what the live processes read.
      this.options.messages.follow((cluster, host) => this.messageVersionFor(cluster, host));
      for (const wake of this.syncWaiters.splice(0)) wake();
    }
  }

  private changed(why: string): void {
    const { own, cluster, metrics, logger } = this.options;
    const negotiated = negotiateMessages(own.messages, this.processes, cluster);
    if (negotiated.version !== this.lastVersion) {
      logger.info(
        { version: negotiated.version, previous: this.lastVersion ?? null, pinnedBy: negotiated.pinnedBy.map((p) => p.id), why },
        'message version of the cluster',
      );
      this.lastVersion = negotiated.version;
    }
    const schema = this.schemaValue;
    if (schema) {
      this.options.records.setWriting(schema.version);
      if (schema.version > own.schema.max && this.beyond === undefined) {
        this.beyond = `the cluster's record schema is ${schema.version}; this build writes ${formatRange(own.schema)}`;
        logger.fatal({ schema: schema.version, reads: own.schema }, 'the cluster finalized a record schema this build cannot write; it writes nothing more (restart it on a newer release)');
      }
    }
    if (metrics) {
      metrics.messageVersion.set({ cluster }, negotiated.version);
      metrics.processes.reset();
      const counts = new Map<string, number>();
      for (const p of this.processesById.values()) counts.set(`${p.cluster}\u0000${p.build}`, (counts.get(`${p.cluster}\u0000${p.build}`) ?? 0) + 1);
      for (const [key, n] of counts) {
        const [c = '', release = ''] = key.split('\u0000');
        metrics.processes.set({ cluster: c, release }, n);
      }
      if (schema) {
        metrics.schemaVersion.set(schema.version);
        metrics.migrationInProgress.set(schema.migration && !schema.migration.done ? 1 : 0);
      }
    }
    for (const listener of this.listeners) listener();
  }
}
