/**
 * The worker role as the composition root assembles it: the volume driver, the incarnation
 * supervisor (session, membership and locks together), and the volume manager with its
 * claimer, runner, sweeper and orphan cleanup. Each part registers its close as it starts, so
 * the stop order is the reverse: the worker drains, then the incarnation releases its locks,
 * leaves and revokes its lease, then the driver closes.
 */
import { randomUUID } from 'node:crypto';
import { CapacityAdmission } from '../backend/admission.js';
import { CensusExporter } from '../census/exporter.js';
import { CensusMetrics } from '../census/metrics.js';
import { BackendMonitor } from '../backend/backend-monitor.js';
import { BackendMetrics } from '../backend/metrics.js';
import { clusterId, hostId, isClustered } from '../config/rules.js';
import { requireActiveActive } from '../drivers/volume-driver.js';
import { currentProcess } from '../fencing/process-identity.js';
import { type OwnerRef, VOLUME_BINARY } from '../identity.js';
import { IncarnationSupervisor } from '../incarnation/supervisor.js';
import { untilAborted } from '../lifecycle/deadline.js';
import type { MembershipMetrics } from '../membership/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Health } from '../ops/health.js';
import { ACTIONS, DETAILS, type MessageInput, newMessage } from '../messages/message-store.js';
import { abortNotice, abortRequestOf } from '../routing/abort-notice.js';
import type { JobBus } from '../routing/job-bus.js';
import type { OpRecord, ResourceRecord } from '../state/records.js';
import { type ForceDeleteHooks, replacedOf } from '../worker/force-delete.js';
import { workerMetrics } from '../worker/metrics.js';
import { OpClaimer } from '../worker/op-claim.js';
import { OpPublisher } from '../worker/op-publisher.js';
import { OperationRunner } from '../worker/operation-runner.js';
import { RepublishSweeper } from '../worker/sweeper.js';
import { VolumeManager } from '../worker/volume-manager.js';
import { Worker } from '../worker/worker.js';
import { ClusterFollower } from '../worker/cluster-follower.js';
import { FailoverRunner } from '../worker/failover-runner.js';
import type { Backends, CompositionContext } from './backends.js';
import { openDriver } from './driver.js';
import { type Fencing, startFencing } from './fencing.js';
import { type OrphanDetection, startOrphanCleanup } from './orphans.js';

/** What the worker role is built on. */
export interface WorkerRoleParts {
  readonly backends: Backends;
  readonly health: Health;
  readonly membershipMetrics: MembershipMetrics;
  readonly orphans: OrphanDetection;
  /** hearth's version, recorded in the service record. */
  readonly version: string;
}

/** Readiness of a worker that has not started yet: registered before anything listens. */
export function addWorkerReadiness(health: Health): void {
  health.addReadiness('membership', () => ({ ok: false, detail: 'not joined to the cluster' }));
  health.addReadiness('worker', () => ({ ok: false, detail: 'worker not started' }));
}

/**
 * The backend's place in `/readyz`. A process that serves the API stays ready while its backend
 * is down — its API works, and taking it out of the Service would not move any job — and
 * `?verbose` shows `[-]backend failed (not counted)`; a worker-only process is not ready then.
 */
function addBackendReadiness(health: Health, monitor: BackendMonitor, servesApi: boolean): void {
  const check = () => (monitor.up ? { ok: true } : { ok: false, detail: `backend ${monitor.state}${monitor.reason ? `: ${monitor.reason}` : ''}` });
  if (servesApi) health.addInformational('backend', check);
  else health.addReadiness('backend', check);
}

/**
 * Opens the driver (Cinder's active/active gate refuses a node-local one in a cluster, before
 * joining, so a refused worker never shows as a member), starts the first incarnation, then
 * the volume manager: start-up hooks, then consuming.
 *
 * @throws AbortedError when `signal` aborts first (what started is torn down by the closer).
 */
export async function startWorkerRole(ctx: CompositionContext, parts: WorkerRoleParts, signal?: AbortSignal): Promise<void> {
  const { config, clock, registry, closer, retry } = ctx;
  const { backends, health } = parts;
  const logger = ctx.logger.child({ component: 'worker' });

  const driver = closer.use('volume driver', await untilAborted(openDriver(config, { logger: ctx.logger }), 'opening the volume driver', signal));
  requireActiveActive(driver, isClustered(config));
  const self = await currentProcess(config);

  // Built below, on the incarnation: the supervisor reaches them through these.
  let runner: OperationRunner | undefined;
  let fencing: Fencing | undefined;
  const incarnations = closer.use(
    'incarnation',
    new IncarnationSupervisor({
      openSession: (s) => backends.openSession(s),
      lockServiceFor: (session) => backends.lockServiceFor(session, { handOff: (previous, s) => fencing?.handOff(previous, s) ?? Promise.resolve(undefined) }),
      settled: (incarnation, s) => runner?.settled(incarnation, s) ?? Promise.resolve(),
      process: self,
      membership: backends.membership,
      join: {
        identity: { cluster: clusterId(config), host: hostId(config), zone: config.zone },
        binary: VOLUME_BINARY,
        version: parts.version,
        // A replicating driver's targets go into the cluster record (the API checks backend_id against them).
        ...(driver.replication ? { replication: { targetIds: driver.replication.targetIds } } : {}),
      },
      clock,
      logger: ctx.logger.child({ component: 'membership' }),
      metrics: parts.membershipMetrics,
      reportIntervalMs: config.reportIntervalMs,
      previousIncarnationWaitMs: config.leaseTtlMs + 1_000,
      retry,
    }),
  );
  // A stopping worker never rejoins as a new incarnation.
  closer.quiesce('no new incarnation', () => incarnations.retire());
  health.addReadiness('membership', () => (incarnations.joined ? { ok: true } : { ok: false, detail: 'not joined to the cluster' }));
  const fences = (fencing = startFencing(ctx, { backends, incarnations, driver, self }));
  await untilAborted(incarnations.start(signal), 'joining the cluster', signal);
  // The first check runs before the worker takes any job; then one every interval.
  const monitor = new BackendMonitor({
    driver,
    member: () => incarnations.current()?.member,
    intervalMs: config.backendHealth.checkIntervalMs,
    clock,
    logger: ctx.logger.child({ component: 'backend' }),
    metrics: new BackendMetrics(registry, clusterId(config), config.alerts.backendNearlyFullPercent / 100),
  });
  closer.add('backend monitor', () => monitor.close());
  await untilAborted(monitor.start(), 'checking the backend', signal);
  addBackendReadiness(health, monitor, config.roles.includes('api'));
  startCensus(ctx, backends, incarnations);

  const { store, membership, jobBus: bus } = backends;
  // The cluster record, from a watch: frozen, and the backend and epoch every run works under.
  const follower = new ClusterFollower({
    membership,
    cluster: clusterId(config),
    binary: VOLUME_BINARY,
    ...(driver.replication ? { replication: driver.replication } : {}),
    metrics: parts.membershipMetrics,
    clock,
    retry,
    logger: ctx.logger.child({ component: 'replication' }),
  });
  closer.add('cluster follower', () => follower.close());
  await untilAborted(follower.start(signal), 'reading the cluster record', signal);
  const takesWork = (): boolean => monitor.up && follower.takesJobs;
  const publisher = new OpPublisher({ bus, store, clock, logger, timeoutMs: config.amqp.publishTimeoutMs });
  const claimer = new OpClaimer({ store, membership });
  const tell = async (message: MessageInput): Promise<void> => backends.messages.create(newMessage(message, randomUUID(), clock.now(), config.messageTtlMs));
  const admission = new CapacityAdmission({ source: monitor, cluster: clusterId(config), tell, now: () => clock.now(), logger });
  const forceDelete = forceDeleteHooks(config.forceDeleteWaitMs, bus, tell, logger);
  const runs = (runner = new OperationRunner({ store, driver, incarnations, publisher, metrics: workerMetrics(registry), clock, logger, retry, admission, forceDelete, epoch: follower }));
  // A force-delete asks the owner of the op it replaced to abort its run: this member aborts the ones it runs.
  const notices = await bus.subscribeNotices((notice) => {
    const request = abortRequestOf(notice);
    if (request && runs.abort(request.opId, request.reason)) logger.warn({ opId: request.opId, resource: `${request.type}:${request.id}`, from: notice.from, reason: request.reason }, 'aborting a run on request');
  });
  closer.add('abort notices', () => notices.cancel());
  const awaitFence = (owner: OwnerRef, cluster: string, s: AbortSignal): Promise<boolean> => fences.awaitFence(owner, cluster, s);
  const cleanup = startOrphanCleanup(ctx, { detection: parts.orphans, incarnations, store, membership, claimer, runner: runs, ledger: backends.failoverLedger, awaitFence });
  if (driver.replication) {
    // The failover a cluster record names runs on one member whose driver replicates.
    const failovers = new FailoverRunner({
      membership,
      follower,
      incarnations,
      replication: driver.replication,
      cluster: clusterId(config),
      binary: VOLUME_BINARY,
      metrics: parts.membershipMetrics,
      logger: ctx.logger.child({ component: 'replication' }),
      awaitFence,
      // Runs in flight get the shutdown grace to finish before the epoch fences them off.
      inFlight: async () => (await store.listOps({ cluster: clusterId(config), ownership: 'owned' })).flatMap((op) => (op.owner ? [op.owner.incarnation] : [])),
      drainMs: config.shutdownGraceMs,
      clock,
    });
    closer.add('failover runner', () => failovers.close());
    failovers.start();
  }
  const manager = new VolumeManager({ store, claimer, runner: runs, incarnations, clock, logger, maxConcurrentOps: config.amqp.prefetch, retry, awaitFence, canTake: takesWork });
  const sweeper = new RepublishSweeper({ store, publisher, incarnations, clock, logger, cluster: clusterId(config), intervalMs: config.sweepIntervalMs, publishedWhenRecorded: !bus.distributed });
  // Consume only while the backend is up and the cluster is not frozen (a job queued meanwhile waits in the queue).
  const backend = {
    get up(): boolean {
      return takesWork();
    },
    get reason(): string {
      return monitor.up ? follower.reason : `backend ${monitor.state}`;
    },
    onChange: (listener: () => void) => {
      const offMonitor = monitor.onChange(listener);
      const offFollower = follower.onChange(listener);
      return () => {
        offMonitor();
        offFollower();
      };
    },
  };
  const worker = new Worker({ bus, incarnations, manager, sweeper, logger, beforeConsume: [cleanup.beforeConsume], extraHandlers: cleanup.handlers, backend });
  // Stop consuming; in-flight operations finish within shutdownGraceMs or are handed back.
  closer.add('worker drain', () => worker.drain(config.shutdownGraceMs));
  // Holding (backend down) counts as ready where the backend check is informational (see addBackendReadiness).
  const holdingIsReady = config.roles.includes('api');
  // So does holding while the cluster is frozen: an operator's choice, not an unhealthy pod (a rollout must not stall on it).
  const holdingReady = (): boolean => worker.state === 'holding' && (holdingIsReady || (monitor.up && follower.frozen));
  health.addReadiness('worker', () => (worker.ready || holdingReady() ? { ok: true } : { ok: false, detail: `worker ${worker.state}` }));
  await untilAborted(worker.start(), 'starting the worker', signal);
}

/** The worker's side of a force-delete: ask the replaced op's owner to abort, and tell the user when the wait was in vain. */
function forceDeleteHooks(waitMs: number, bus: Pick<JobBus, 'publishNotice'>, tell: (m: MessageInput) => Promise<void>, logger: Logger): ForceDeleteHooks {
  return {
    waitMs,
    abortReplaced: async (op: OpRecord) => {
      const replaced = replacedOf(op);
      if (!replaced?.owner) return;
      try {
        await bus.publishNotice(abortNotice({ type: op.type, id: op.id, opId: replaced.opId, reason: `force-delete (op ${op.opId})` }));
      } catch (err) {
        logger.warn({ err, opId: op.opId }, 'could not send the abort notice of a force-delete; waiting for the run to end by itself');
      }
    },
    timedOut: async (op: OpRecord, record: ResourceRecord, why: string) => {
      try {
        await tell({
          projectId: record.project_id,
          requestId: `req-${op.opId}`,
          resourceType: op.type === 'volume' ? 'VOLUME' : 'VOLUME_SNAPSHOT',
          resourceUuid: op.id,
          action: op.type === 'volume' ? ACTIONS.deleteVolume : ACTIONS.deleteSnapshot,
          detail: DETAILS.earlierOperationRunning,
          why,
        });
      } catch (err) {
        logger.warn({ err, opId: op.opId }, 'could not record the user message of a force-delete that timed out');
      }
    },
  };
}

/** The census (hearth_resources, the oldest unfinished operations), exported by the oldest live member. */
function startCensus(ctx: CompositionContext, backends: Backends, incarnations: IncarnationSupervisor): void {
  const logger = ctx.logger.child({ component: 'census' });
  const metrics = new CensusMetrics(ctx.registry, ctx.config.alerts.operationStuckMs / 1000, (err) => logger.debug({ err }, 'the census could not be read for a scrape'));
  const exporter = new CensusExporter({
    membership: backends.membership,
    self: () => incarnations.current()?.member.owner,
    open: () => backends.openCensus(),
    metrics,
    clock: ctx.clock,
    logger,
    retry: ctx.retry,
  });
  const unsubscribe = incarnations.subscribe(() => exporter.reconsider());
  ctx.closer.add('census', async () => {
    unsubscribe();
    await exporter.close();
  });
  exporter.start();
}
