/**
 * The backends of one deployment mode, as `app.ts` assembles them: the state store, membership,
 * sessions and locks, and the job bus. `cluster.ts` builds them on etcd and RabbitMQ,
 * `single-node.ts` on SQLite, in-process locks and the in-process bus; `app.ts` picks one.
 */
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Locking } from '../locks/factory.js';
import type { LockTable } from '../locks/lock-table.js';
import type { LeaseTtls } from '../membership/lease-ttl.js';
import type { FailoverLedger } from '../orphans/failover-ledger.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { JobBus } from '../routing/job-bus.js';
import type { StateStore } from '../state/state-store.js';

/** What every backend factory gets. */
export interface BackendOptions {
  readonly config: Config;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly logger: Logger;
}

/** One mode's backends. Nothing connects before the matching `open…` call. */
export interface Backends {
  readonly mode: 'cluster' | 'single-node';
  /** The job bus (not started): the API publishes on it, the worker consumes from it. */
  readonly jobBus: JobBus;
  /** Runs before anything else opens (single node: takes the data-dir lock). */
  prepare(): Promise<void>;
  /** The state of record. */
  openStateStore(): StateStore;
  /** Membership, for the API's views and the worker's join. */
  openMembership(): Promise<Membership>;
  /** Sessions and the lock service of each (workers only). */
  createLocking(): Locking;
  /** The locks held now, for the operator's view (cluster: etcd's; single node: this process's). */
  lockTable(): LockTable;
  /** Members' session lease times, for the operator's view (none on a single node). */
  leaseTtls(): LeaseTtls;
  /** Which deaths were counted as failovers (cluster: etcd, cluster-wide; single node: memory). */
  failoverLedger(): FailoverLedger;
  /** False once the process must stop serving (single node: the data-dir lock was lost). */
  healthy(): { readonly ok: boolean; readonly detail?: string };
  /** Closes clients and releases the data-dir lock; after every component using them closed. */
  close(): Promise<void>;
}
