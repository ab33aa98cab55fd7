import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { apiAuthFromConfig } from './api/auth-setup.js';
import { clusterRoutes } from './api/clusters.js';
import { operatorViewRoutes } from './api/operator-views.js';
import { serviceRemovalRoutes } from './api/service-removal.js';
import { ApiServer, apiServerOptions } from './api/server.js';
import { clusterBackends } from './composition/cluster.js';
import { OrphansRole } from './composition/orphans.js';
import { singleNodeBackends } from './composition/single-node.js';
import { type WorkerExtension, WorkerRole } from './composition/worker.js';
import { redactConfig } from './config/redact.js';
import { AbortedError } from './errors.js';
import { clusterId, isClustered } from './config/rules.js';
import type { Config } from './config/schema.js';
import { VOLUME_BINARY } from './identity.js';
import { type Clock, systemClock } from './lifecycle/clock.js';
import { MembershipClusterAdmission } from './membership/cluster-status.js';
import type { Membership } from './membership/membership.js';
import { MembershipMetrics } from './membership/metrics.js';
import { MembershipMonitor } from './membership/monitor.js';
import type { Logger } from './observability/logger.js';
import { createRegistry } from './observability/metrics.js';
import { Health } from './ops/health.js';
import { OpsServer, opsLimits } from './ops/ops-server.js';
import { jobBusReadiness } from './routing/create-job-bus.js';
import { JobBusPublisher } from './routing/job-bus-publisher.js';
import type { StateStore } from './state/state-store.js';
import { type BuildInfo, loadBuildInfo } from './version.js';
import { volumeRoutes } from './volumes/volume-routes.js';
import { VolumeService } from './volumes/volume-service.js';

/**
 * Longest an API request waits for the broker's confirm of the job it records. A failed or
 * slow publish must not hold a request for `amqp.publishTimeoutMs`; the op is recorded either
 * way, and the republish sweeper publishes it later (docs/worker.md).
 */
export const API_PUBLISH_WAIT_MS = 1_000;

/** What a running process exposes to its caller (the serve command, tests). */
export interface App {
  readonly config: Config;
  readonly registry: Registry;
  readonly health: Health;
  /** Bound addresses, known once `start()` resolved. */
  readonly addresses: { readonly api?: AddressInfo; readonly ops?: AddressInfo };
  /**
   * Starts every component in dependency order. Aborting `signal` (SIGTERM during a start that
   * keeps retrying an unreachable etcd) stops waiting at once and rejects with an
   * `AbortedError`; the step in progress is left to `close()`, which tears it down.
   */
  start(signal?: AbortSignal): Promise<void>;
  /**
   * Shuts down in a fixed order: readiness off → API stops accepting → workers stop consuming
   * and drain → locks released → membership left (lease revoked) → clients closed → ops
   * listener closed. Idempotent.
   */
  close(): Promise<void>;
}

/** Replaceable parts, for tests. */
export interface AppOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly build?: BuildInfo;
  /** Additions to the worker (start-up hooks, message handlers), e.g. orphan cleanup. */
  readonly workerExtensions?: readonly WorkerExtension[];
}

/**
 * Waits for a start step unless `signal` aborts first: then rejects with an AbortedError naming
 * the step, and the step's own outcome is dropped (close() ends what it started).
 */
function untilAborted(work: Promise<unknown>, step: string, signal: AbortSignal | undefined): Promise<unknown> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(new AbortedError(`start-up (${step})`, { cause: signal.reason }));
  work.catch(() => undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError(`start-up (${step})`, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

interface Step {
  readonly name: string;
  readonly run: () => Promise<unknown>;
}

/**
 * The composition root: the only place that picks concrete adapters. With no etcd and no
 * RabbitMQ configured it builds the single-node daemon (`composition/single-node.ts`);
 * otherwise a cluster member (`composition/cluster.ts`). The API and the worker role
 * (`composition/worker.ts`) are the same in both.
 */
export function createApp(config: Config, options: AppOptions): App {
  const logger = options.logger;
  const build = options.build ?? loadBuildInfo();
  const registry = createRegistry(build);
  const clock = options.clock ?? systemClock;
  const health = new Health();
  const ops = new OpsServer(registry, health, logger.child({ component: 'ops' }), opsLimits(config.ops));
  const apiLogger = logger.child({ component: 'api' });
  const apiAuth = config.roles.includes('api') ? apiAuthFromConfig(config.api, apiLogger) : undefined;
  const api = apiAuth ? new ApiServer({ logger: apiLogger, ...apiServerOptions(config.api), auth: apiAuth.options }) : undefined;
  const addresses: { api?: AddressInfo; ops?: AddressInfo } = {};
  const backends = isClustered(config) ? clusterBackends({ config, clock, registry, logger }) : singleNodeBackends({ config, clock, registry, logger });
  const jobBus = backends.jobBus;
  // The API publishes on the job bus, the worker consumes from it; /readyz fails while it is down.
  health.addReadiness('job-bus', jobBusReadiness(jobBus));

  let store: StateStore | undefined;
  let membership: Membership | undefined;
  let monitor: MembershipMonitor | undefined;
  const membershipMetrics = new MembershipMetrics(registry);
  const opened = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} must open first`);
    return value;
  };
  // Membership: the API reads it in both roles; a worker joins on its session.
  const openMembership = async (): Promise<void> => {
    membership = await backends.openMembership();
    monitor = new MembershipMonitor({ membership, metrics: membershipMetrics, clock, logger: logger.child({ component: 'membership' }), retryDelayMs: 1_000 });
    monitor.start();
    api?.register(clusterRoutes(membership, VOLUME_BINARY));
    api?.register(operatorViewRoutes({ locks: backends.lockTable(), membership, leases: backends.leaseTtls() }));
    api?.register(serviceRemovalRoutes({ membership, store: opened(store, 'the state store'), logger: apiLogger }));
    orphans.open(opened(store, 'the state store'), membership, api);
  };
  // Orphan detection in every process; cleanup through the API and the worker's extension.
  const orphans = new OrphansRole({ config, clock, logger, registry, bus: jobBus, ledger: backends.failoverLedger() });
  const worker = config.roles.includes('worker')
    ? new WorkerRole({
        config,
        clock,
        logger,
        registry,
        version: build.version,
        health,
        bus: jobBus,
        locking: () => backends.createLocking(),
        store: () => opened(store, 'the state store'),
        membership: () => opened(membership, 'membership'),
        membershipMetrics,
        extensions: [orphans.extension, ...(options.workerExtensions ?? [])],
      })
    : undefined;
  const openApi = async (): Promise<void> => {
    if (!api) return;
    const service = new VolumeService({
      store: opened(store, 'the state store'),
      publisher: new JobBusPublisher(jobBus, { timeoutMs: Math.min(config.amqp.publishTimeoutMs, API_PUBLISH_WAIT_MS) }),
      admission: new MembershipClusterAdmission(opened(membership, 'membership'), VOLUME_BINARY),
      clock,
      logger: logger.child({ component: 'volumes' }),
      cluster: clusterId(config),
      availabilityZone: config.zone,
    });
    api.register(volumeRoutes(service));
  };

  const startSteps: Step[] = [
    // Token files first: a bad one is a configuration error, found before anything listens.
    ...(apiAuth ? [{ name: 'api auth', run: () => apiAuth.load() }] : []),
    { name: 'data dir', run: () => mkdir(config.dataDir, { recursive: true }) },
    { name: 'backends', run: () => backends.prepare() },
    { name: 'state store', run: async () => (store = backends.openStateStore()) },
    { name: 'ops listener', run: async () => (addresses.ops = await ops.listen(config.ops.listen)) },
    { name: 'membership', run: openMembership },
    { name: 'job bus', run: () => jobBus.start() },
    ...(api ? [{ name: 'volume api', run: openApi }, { name: 'api listener', run: async () => (addresses.api = await api.listen(config.api.listen)) }] : []),
    ...(worker
      ? [
          // The driver's active/active gate refuses before joining, so a refused worker never shows as a member.
          { name: 'volume driver', run: () => worker.openDriver() },
          { name: 'join cluster', run: () => worker.join() },
          { name: 'worker', run: () => worker.startWorker() },
        ]
      : []),
  ];

  const stopSteps: Step[] = [
    {
      name: 'readiness off',
      run: async () => {
        health.startDraining();
        worker?.retire(); // a stopping worker never rejoins as a new incarnation
      },
    },
    ...(api ? [{ name: 'api listener', run: () => api.close() }] : []),
    // No more automatic cleanup; orphan re-runs in flight are handed back like other work.
    { name: 'orphans', run: () => orphans.close() },
    // Stop consuming; in-flight operations finish or are handed back (the bus is still up for that).
    { name: 'worker drain', run: async () => worker?.drain() },
    { name: 'job bus', run: () => jobBus.close() },
    { name: 'volume driver', run: async () => worker?.closeDriver() },
    { name: 'locks', run: async () => worker?.releaseLocks() },
    // Membership is left (peers see it at once), then the session lease revoked.
    { name: 'membership leave', run: async () => worker?.leave() },
    { name: 'sessions', run: async () => worker?.closeSessions() },
    { name: 'membership', run: async () => Promise.all([monitor?.close(), membership?.close()]) },
    { name: 'state store', run: async () => store?.close() },
    { name: 'ops listener', run: () => ops.close() },
    { name: 'backends', run: () => backends.close() },
  ];

  health.addLiveness('event-loop', () => ({ ok: true }));
  health.addLiveness('data-dir-lock', () => backends.healthy());

  let started: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  return {
    config,
    registry,
    health,
    addresses,
    start(signal) {
      started ??= (async () => {
        logger.info({ mode: backends.mode, config: redactConfig(config), version: build.version }, 'starting hearth');
        for (const step of startSteps) {
          logger.debug({ step: step.name }, 'starting');
          await untilAborted(step.run(), step.name, signal);
        }
        logger.info({ api: addresses.api, ops: addresses.ops }, 'hearth started');
      })();
      return started;
    },
    close() {
      closing ??= (async () => {
        const errors: unknown[] = [];
        for (const step of stopSteps) {
          try {
            await step.run();
          } catch (err) {
            errors.push(err);
            logger.error({ err, step: step.name }, 'shutdown step failed');
          }
        }
        logger.info('hearth stopped');
        if (errors.length > 0) throw new AggregateError(errors, 'shutdown failed');
      })();
      return closing;
    },
  };
}
