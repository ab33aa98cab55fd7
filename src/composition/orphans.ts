/**
 * The orphans concern as the composition root assembles it: detection in every process (the
 * API's view and the gauge need it, workers or not), and on a worker the cleaner — which
 * takes Cinder's `workers/cleanup` requests off the bus, cleans up this host's earlier
 * incarnations before it consumes, and (opt-in) cleans up orphans automatically.
 */
import { clusterId } from '../config/rules.js';
import type { IncarnationSupervisor } from '../incarnation/supervisor.js';
import { AutoCleanup } from '../orphans/auto-cleanup.js';
import { OrphanCleaner } from '../orphans/cleaner.js';
import { cleanupHandler } from '../orphans/cleanup-handler.js';
import { OrphanDetector } from '../orphans/detector.js';
import type { FailoverLedger } from '../orphans/failover-ledger.js';
import { OrphanMetrics } from '../orphans/metrics.js';
import type { Membership } from '../membership/membership.js';
import type { StateStore } from '../state/state-store.js';
import type { MessageHandlers } from '../worker/message-dispatch.js';
import type { OpClaimer } from '../worker/op-claim.js';
import type { OperationRunner } from '../worker/operation-runner.js';
import type { BeforeConsumeHook } from '../worker/worker.js';
import type { OwnerRef } from '../identity.js';
import type { CompositionContext } from './backends.js';

/** How long the start-up cleanup waits for the fences of this host's earlier incarnations before consuming anyway. */
const STARTUP_FENCE_WAIT_MS = 30_000;

/** The detector and its instruments, shared by the API's routes and the worker's cleaner. */
export interface OrphanDetection {
  readonly detector: OrphanDetector;
  readonly metrics: OrphanMetrics;
}

/** Starts orphan detection (watch + backstop sweep); it stops when the closer runs. */
export function startOrphanDetection(ctx: CompositionContext, store: StateStore, membership: Membership): OrphanDetection {
  const { config, clock, registry, logger, closer, retry } = ctx;
  const metrics = new OrphanMetrics(registry);
  metrics.watchCluster(clusterId(config));
  const detector = closer.use(
    'orphan detector',
    new OrphanDetector({
      membership,
      store,
      clock,
      logger: logger.child({ component: 'orphans' }),
      metrics,
      sweepIntervalMs: config.orphans.sweepIntervalMs,
      retry,
    }),
  );
  detector.start();
  return { detector, metrics };
}

/** What the worker's orphan cleanup is built on. */
export interface OrphanCleanupParts {
  readonly detection: OrphanDetection;
  readonly incarnations: IncarnationSupervisor;
  readonly store: StateStore;
  readonly membership: Membership;
  readonly claimer: OpClaimer;
  readonly runner: OperationRunner;
  readonly ledger: FailoverLedger;
  /** Asks for a dead owner's fence and waits for it; orphans of an owner not fenced yet are cleaned once it is. */
  readonly awaitFence: (owner: OwnerRef, cluster: string, signal: AbortSignal) => Promise<boolean>;
}

/** What the worker's orphan cleanup adds to the worker. */
export interface OrphanCleanup {
  /** Cleans up this host's earlier incarnations before the worker consumes. */
  readonly beforeConsume: BeforeConsumeHook;
  /** Carries out Cinder's `workers/cleanup` requests that reach this member. */
  readonly handlers: MessageHandlers;
}

/**
 * Builds the worker's cleaner, its start-up self-cleanup and the cleanup-request handler, and
 * starts automatic cleanup when `orphans.autoCleanup` is on. Automatic cleanup and retries of
 * failed cleanup actions stop as soon as shutdown begins; cleanups in flight are handed back
 * like other work.
 */
export function startOrphanCleanup(ctx: CompositionContext, parts: OrphanCleanupParts): OrphanCleanup {
  const { config, clock, closer } = ctx;
  const { detector, metrics } = parts.detection;
  const logger = ctx.logger.child({ component: 'orphans' });
  const member = () => parts.incarnations.current()?.member;
  const live = () => member()?.joined === true;
  const cleaner = new OrphanCleaner({
    store: parts.store,
    membership: parts.membership,
    member,
    claimer: parts.claimer,
    runner: parts.runner,
    clock,
    logger,
    metrics,
    ledger: parts.ledger,
    creatingAction: config.orphans.creatingAction,
    deathOf: (incarnation) => detector.deathOf(incarnation),
    concurrency: config.amqp.prefetch,
    onCleaned: () => void detector.sweep().catch(() => undefined),
    awaitFence: parts.awaitFence,
  });
  // Stops retrying failed cleanup actions as soon as shutdown begins (the worker then drains).
  closer.quiesce('orphan cleaner', () => cleaner.close());
  // The death of this process's own incarnation (lost session) is known here first.
  const unsubscribe = parts.incarnations.subscribe((event) => {
    if (event.type === 'ended' && event.reason !== 'left') detector.noteDeath(event.owner.incarnation, clock.now());
  });
  closer.add('incarnation deaths', unsubscribe);
  if (config.orphans.autoCleanup) {
    const auto = new AutoCleanup({
      detector,
      clean: (orphans, signal) => cleaner.cleanOrphans(orphans, 'auto_cleanup', signal),
      live,
      cluster: clusterId(config),
      graceMs: config.orphans.graceMs,
      retryDelayMs: config.orphans.sweepIntervalMs,
      clock,
      logger,
    });
    closer.quiesce('automatic cleanup', () => auto.close());
    auto.start();
  }
  const beforeConsume: BeforeConsumeHook = async (hook) => {
    const me = hook.incarnation.member.owner;
    // Cinder's init_host cleans before consuming: give the earlier runs' fences a little time
    // (a killed process on this machine is fenced at once); past it, they finish in the background.
    const report = await cleaner.clean({ ownerHost: me.host, cluster: hook.incarnation.member.cluster }, 'restart', hook.signal, { fenceWaitMs: STARTUP_FENCE_WAIT_MS });
    logger.info({ ...report, incarnation: me.incarnation, previous: hook.previous?.incarnation ?? null, reason: hook.reason }, 'start-up cleanup of earlier incarnations done');
  };
  return { beforeConsume, handlers: { cleanup: cleanupHandler({ cleaner, live, logger }) } };
}
