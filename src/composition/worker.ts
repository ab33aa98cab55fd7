/**
 * The worker role: driver, membership supervisor, one lock service per incarnation, and the
 * volume manager with its claimer, runner, sweeper and lifecycle. `app.ts` runs its steps in
 * order (start: driver → join → worker; stop: drain → … → locks → leave → sessions).
 */
import type { Registry } from 'prom-client';
import { clusterId, hostId, isClustered } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { createDriver } from '../drivers/create-driver.js';
import { requireActiveActive, type VolumeDriver } from '../drivers/volume-driver.js';
import { VOLUME_BINARY } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Locking } from '../locks/factory.js';
import type { Membership } from '../membership/membership.js';
import type { MembershipMetrics } from '../membership/metrics.js';
import { MemberSupervisor } from '../membership/supervisor.js';
import type { Logger } from '../observability/logger.js';
import type { Health } from '../ops/health.js';
import type { JobBus } from '../routing/job-bus.js';
import type { StateStore } from '../state/state-store.js';
import { type Incarnations, SupervisedIncarnations } from '../worker/incarnations.js';
import type { MessageHandlers } from '../worker/message-dispatch.js';
import { workerMetrics } from '../worker/metrics.js';
import { OpClaimer } from '../worker/op-claim.js';
import { OpPublisher } from '../worker/op-publisher.js';
import { OperationRunner } from '../worker/operation-runner.js';
import { RepublishSweeper } from '../worker/sweeper.js';
import { VolumeManager } from '../worker/volume-manager.js';
import { type BeforeConsumeHook, Worker } from '../worker/worker.js';

/** The parts of a running worker that other concerns build on (orphan cleanup, …). */
export interface WorkerParts {
  readonly config: Config;
  readonly store: StateStore;
  readonly membership: Membership;
  readonly bus: JobBus;
  readonly driver: VolumeDriver;
  readonly incarnations: Incarnations;
  readonly claimer: OpClaimer;
  readonly runner: OperationRunner;
  readonly publisher: OpPublisher;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
}

/** What an extension adds to the worker: start-up hooks and handlers of other message types. */
export interface WorkerExtensions {
  readonly beforeConsume?: readonly BeforeConsumeHook[];
  readonly extraHandlers?: MessageHandlers;
}

/** Builds an extension from the worker's parts; called once, when the worker is built. */
export type WorkerExtension = (parts: WorkerParts) => WorkerExtensions;

/** What the worker role needs from the app. */
export interface WorkerRoleOptions {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly version: string;
  readonly health: Health;
  readonly bus: JobBus;
  readonly locking: () => Locking;
  readonly store: () => StateStore;
  readonly membership: () => Membership;
  readonly membershipMetrics: MembershipMetrics;
  readonly extensions?: readonly WorkerExtension[];
}

/** See the module doc. Every step is safe to call when an earlier one never ran. */
export class WorkerRole {
  private driver: VolumeDriver | undefined;
  private locking: Locking | undefined;
  private supervisor: MemberSupervisor | undefined;
  private incarnations: SupervisedIncarnations | undefined;
  private worker: Worker | undefined;

  constructor(private readonly options: WorkerRoleOptions) {
    options.health.addReadiness('membership', () => (this.supervisor?.joined ? { ok: true } : { ok: false, detail: 'not joined to the cluster' }));
    options.health.addReadiness('worker', () => (this.worker?.ready ? { ok: true } : { ok: false, detail: `worker ${this.worker?.state ?? 'not started'}` }));
  }

  /** Opens the driver; Cinder's SUPPORTS_ACTIVE_ACTIVE gate refuses a node-local one in a cluster, before joining. */
  async openDriver(): Promise<void> {
    this.driver = await createDriver(this.options.config, { logger: this.options.logger });
    requireActiveActive(this.driver, isClustered(this.options.config));
  }

  /** Opens the session(s) and joins the cluster as the first incarnation. */
  async join(): Promise<void> {
    const { config, clock, logger, version, membershipMetrics } = this.options;
    const locking = (this.locking = this.options.locking());
    const supervisor = (this.supervisor = new MemberSupervisor({
      membership: this.options.membership(),
      join: { identity: { cluster: clusterId(config), host: hostId(config), zone: config.zone }, binary: VOLUME_BINARY, version },
      sessions: locking.sessions,
      clock,
      logger: logger.child({ component: 'membership' }),
      metrics: membershipMetrics,
      reportIntervalMs: config.reportIntervalMs,
      previousIncarnationWaitMs: config.leaseTtlMs + 1_000,
      retryDelayMs: 1_000,
    }));
    // Subscribed before the start, so the first incarnation gets its lock service.
    this.incarnations = new SupervisedIncarnations({ supervisor, lockServiceFor: (s) => locking.lockServiceFor(s), logger });
    await supervisor.start();
  }

  /** Builds the volume manager and starts it: hooks, then consuming. */
  async startWorker(): Promise<void> {
    const { config, clock, registry, bus } = this.options;
    const driver = this.driver;
    const incarnations = this.incarnations;
    if (!driver || !incarnations) throw new Error('the driver must open and the worker join before it starts');
    const logger = this.options.logger.child({ component: 'worker' });
    const store = this.options.store();
    const membership = this.options.membership();
    const publisher = new OpPublisher({ bus, store, clock, logger, timeoutMs: config.amqp.publishTimeoutMs });
    const claimer = new OpClaimer({ store, membership });
    const runner = new OperationRunner({ store, driver, incarnations, publisher, metrics: workerMetrics(registry), clock, logger });
    const parts: WorkerParts = { config, store, membership, bus, driver, incarnations, claimer, runner, publisher, clock, logger, registry };
    const extensions = (this.options.extensions ?? []).map((extend) => extend(parts));
    const manager = new VolumeManager({ store, claimer, runner, incarnations, clock, logger, maxConcurrentOps: config.amqp.prefetch });
    const sweeper = new RepublishSweeper({ store, publisher, incarnations, clock, logger, cluster: clusterId(config), intervalMs: config.sweepIntervalMs });
    this.worker = new Worker({
      bus,
      incarnations,
      manager,
      sweeper,
      logger,
      beforeConsume: extensions.flatMap((e) => e.beforeConsume ?? []),
      extraHandlers: Object.assign({}, ...extensions.map((e) => e.extraHandlers ?? {})) as MessageHandlers,
    });
    await this.worker.start();
  }

  /** Shutdown has begun: a session or incarnation lost from now on is not replaced by a new one. */
  retire(): void {
    this.supervisor?.retire();
    this.locking?.sessions.retire();
  }

  /** Stops consuming; in-flight operations finish within `shutdownGraceMs` or are handed back. */
  async drain(): Promise<void> {
    await this.worker?.drain(this.options.config.shutdownGraceMs);
  }

  async closeDriver(): Promise<void> {
    await this.driver?.close();
  }

  /** Closes the lock services: whatever is still held is released. */
  async releaseLocks(): Promise<void> {
    await this.incarnations?.close();
  }

  /** Deletes the alive key: peers see the member leave at once. */
  async leave(): Promise<void> {
    await this.supervisor?.close();
  }

  /** Revokes the session lease (its keys vanish now, not a TTL later). */
  async closeSessions(): Promise<void> {
    await this.locking?.sessions.close();
  }
}
