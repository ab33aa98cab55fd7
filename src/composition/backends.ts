/**
 * The backends of one deployment mode, as the composition root assembles them: the state of
 * record, membership, sessions and locks, the job bus and the operator views' sources.
 * `cluster.ts` builds them on etcd and RabbitMQ, `single-node.ts` on SQLite, in-process locks
 * and the in-process bus; `app.ts` picks one. These two files are the only places that choose
 * a concrete adapter.
 */
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Closer } from '../lifecycle/closer.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { LockService } from '../locks/lock-service.js';
import type { LockTable } from '../locks/lock-table.js';
import type { LeaseTtls } from '../membership/lease-ttl.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { CheckResult } from '../ops/health.js';
import type { FenceQueue } from '../fencing/fence-queue.js';
import type { EtcdLockServiceOptions } from '../locks/etcd-lock-service.js';
import type { FailoverLedger } from '../orphans/failover-ledger.js';
import type { Census } from '../census/census.js';
import type { MessageStore } from '../messages/message-store.js';
import type { VolumeTypeStore } from '../volume-types/volume-type-store.js';
import type { JobBus } from '../routing/job-bus.js';
import type { Session } from '../session/session.js';
import type { StateStore } from '../state/state-store.js';
import type { RecordVersions } from '../state/record-versions.js';
import type { MessageVersions } from '../routing/message-versions.js';
import type { UpgradeRegistry } from '../upgrade/registry.js';

/** What every part of the composition is built with. */
export interface CompositionContext {
  readonly config: Config;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Where each step registers the close of what it started. */
  readonly closer: Closer;
  /** The retry policy of calls to etcd (`retry.*`). */
  readonly retry: Backoff;
}

/** One mode's backends, open and registered with the closer. */
export interface Backends {
  readonly mode: 'cluster' | 'single-node';
  /** The state of record. */
  readonly store: StateStore;
  /** Membership, for the API's views and the worker's join. */
  readonly membership: Membership;
  /** The job bus (not started): the API publishes on it, the worker consumes from it. */
  readonly jobBus: JobBus;
  /** The locks held now, for the operator's view (cluster: etcd's; single node: this process's). */
  readonly lockTable: LockTable;
  /** Members' session lease times, for the operator's view (none on a single node). */
  readonly leaseTtls: LeaseTtls;
  /** Which deaths were counted as failovers (cluster: etcd, cluster-wide; single node: memory). */
  readonly failoverLedger: FailoverLedger;
  /** Fence operations of dead incarnations (cluster: etcd; single node: memory). */
  readonly fenceQueue: FenceQueue;
  /** User messages (Cinder's messages API): cluster: etcd; single node: a table in the state file. */
  readonly messages: MessageStore;
  /** Volume types (multiattach): cluster: etcd; single node: a table in the state file. */
  readonly volumeTypes: VolumeTypeStore;
  /** Opens the census (counts by status, oldest ops): cluster: a watch of etcd; single node: the state file's own counts. */
  openCensus(): Census;
  /** Where every process says what it reads and writes, and the record schema (docs/upgrades.md). */
  readonly upgrade: UpgradeRegistry;
  /** The version choices the store and the bus follow; the upgrade view feeds them. */
  readonly protocol: { readonly records: RecordVersions; readonly messages: MessageVersions };
  /** Opens one session: one lease per incarnation (workers only). */
  openSession(signal: AbortSignal): Promise<Session>;
  /** The lock service of `session`; it dies with the session. `handOff` gates a takeover from an owner that died (fencing). */
  lockServiceFor(session: Session, options?: { readonly handOff?: EtcdLockServiceOptions['handOff'] }): LockService;
  /** Liveness of the backends themselves (single node: the data-dir lock is still ours). */
  healthy(): CheckResult;
}
