/**
 * The orphans concern, assembled: the detector (every process: it feeds the API view and
 * `hearth_orphaned_operations`), the API routes (`workers/cleanup`, `/hearth/v1/orphans`), and
 * for a worker an extension with the start-up cleanup of its own earlier incarnations, the
 * handler of `cleanup` messages and, when `orphans.autoCleanup` is on, automatic cleanup.
 */
import type { Registry } from 'prom-client';
import type { ApiServer } from '../api/server.js';
import { clusterId } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import { AutoCleanup } from '../orphans/auto-cleanup.js';
import { OrphanCleaner } from '../orphans/cleaner.js';
import { cleanupHandler } from '../orphans/cleanup-handler.js';
import { OrphanDetector } from '../orphans/detector.js';
import type { FailoverLedger } from '../orphans/failover-ledger.js';
import { OrphanMetrics } from '../orphans/metrics.js';
import { orphanRoutes } from '../orphans/routes.js';
import type { JobBus } from '../routing/job-bus.js';
import type { StateStore } from '../state/state-store.js';
import type { BeforeConsumeContext } from '../worker/worker.js';
import type { WorkerExtension, WorkerExtensions, WorkerParts } from './worker.js';

/** What {@link OrphansRole} needs from the app. */
export interface OrphansRoleOptions {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly bus: JobBus;
  /** Counts each death once (`hearth_failovers_total`). */
  readonly ledger: FailoverLedger;
}

/** See the module doc. `open` once the store and membership are open; `close` is idempotent. */
export class OrphansRole {
  private readonly metrics: OrphanMetrics;
  private readonly logger: Logger;
  private detector: OrphanDetector | undefined;
  private cleaner: OrphanCleaner | undefined;
  private auto: AutoCleanup | undefined;
  private unsubscribe: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: OrphansRoleOptions) {
    this.metrics = new OrphanMetrics(options.registry);
    this.metrics.watchCluster(clusterId(options.config));
    this.logger = options.logger.child({ component: 'orphans' });
  }

  /** Starts the detector and adds the API routes (when this process serves the API). */
  open(store: StateStore, membership: Membership, api: ApiServer | undefined): void {
    const { config, clock, bus } = this.options;
    const detector = (this.detector = new OrphanDetector({
      membership,
      store,
      clock,
      logger: this.logger,
      metrics: this.metrics,
      sweepIntervalMs: config.orphans.sweepIntervalMs,
      retryDelayMs: 1_000,
    }));
    detector.start();
    api?.register(
      orphanRoutes({
        membership,
        store,
        orphans: detector,
        publisher: { publish: async (d) => void (await bus.publish({ kind: 'cleanup', ...d })) },
        logger: this.logger,
      }),
    );
  }

  /** The worker's additions; see the module doc. */
  readonly extension: WorkerExtension = (parts) => this.extend(parts);

  private extend(parts: WorkerParts): WorkerExtensions {
    const detector = this.detector;
    if (!detector) throw new Error('the orphan detector must open before the worker starts');
    const { config, clock } = this.options;
    const member = () => parts.incarnations.current()?.member;
    const live = () => member()?.joined === true;
    const cleaner = (this.cleaner = new OrphanCleaner({
      store: parts.store,
      membership: parts.membership,
      member,
      claimer: parts.claimer,
      runner: parts.runner,
      clock,
      logger: this.logger,
      metrics: this.metrics,
      ledger: this.options.ledger,
      creatingAction: config.orphans.creatingAction,
      deathOf: (incarnation) => detector.deathOf(incarnation),
      concurrency: config.amqp.prefetch,
      onCleaned: () => void detector.sweep().catch(() => undefined),
    }));
    // The death of this process's own incarnation (lost session) is known here first.
    this.unsubscribe = parts.incarnations.subscribe((change) => {
      if (change.type === 'ended' && change.reason !== 'left') detector.noteDeath(change.owner.incarnation, clock.now());
    });
    if (config.orphans.autoCleanup) {
      this.auto = new AutoCleanup({
        detector,
        clean: (orphans, signal) => cleaner.cleanOrphans(orphans, 'auto_cleanup', signal),
        live,
        cluster: clusterId(config),
        graceMs: config.orphans.graceMs,
        retryDelayMs: config.orphans.sweepIntervalMs,
        clock,
        logger: this.logger,
      });
      this.auto.start();
    }
    const startup = async (ctx: BeforeConsumeContext): Promise<void> => {
      const me = ctx.incarnation.member.owner;
      const report = await cleaner.clean({ ownerHost: me.host, cluster: ctx.incarnation.member.cluster }, 'restart', ctx.signal);
      this.logger.info({ ...report, incarnation: me.incarnation, previous: ctx.previous?.incarnation ?? null, reason: ctx.reason }, 'start-up cleanup of earlier incarnations done');
    };
    return { beforeConsume: [startup], extraHandlers: { cleanup: cleanupHandler({ cleaner, live, logger: this.logger }) } };
  }

  /** Stops automatic cleanup, hands back re-runs in flight, stops the detector. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unsubscribe?.();
      await this.auto?.close();
      await this.cleaner?.close();
      await this.detector?.close();
    })();
    return this.closing;
  }
}
