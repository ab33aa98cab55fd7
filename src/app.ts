/**
 * The composition root: one pass that starts hearth's parts in dependency order. Each step
 * builds its component, registers its close with one {@link Closer} and starts it, so the stop
 * order is the start order reversed by construction. Adapters are chosen in
 * `composition/cluster.ts` or `composition/single-node.ts`; nothing below this folder imports a
 * concrete adapter of another concern.
 *
 * Start: API token files → data dir → backends (single node: the data-dir lock first) → ops
 * listener → upgrade (version check, presence, live view) → membership monitor → job bus →
 * orphan detection → API → volume driver → incarnation (session, membership, locks) → worker.
 *
 * Stop: first what shutdown must tell everyone at once — readiness off, the API stops
 * accepting, no new incarnation, no new automatic cleanup — then the reverse of the start:
 * the worker drains → the incarnation releases its locks, leaves and revokes its lease → the
 * driver → … → the upgrade view and presence → the ops listener → the backends.
 *
 * Loading: a process loads only the code of its mode and roles. The backends of the other mode
 * (etcd3 with gRPC and amqplib, or SQLite), the API (fastify, its routes and request schemas)
 * and the worker (drivers, the volume manager) are imported here, on demand, so a worker-only
 * member never holds the API's modules in memory, nor an API-only member the drivers
 * (docs/operations.md, "Many volumes"). Nothing else imports those composition files.
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { apiAuthFromConfig } from './api/auth-setup.js';
import type { Backends, CompositionContext } from './composition/backends.js';
import type { startApi } from './composition/api.js';
import { startOrphanDetection } from './composition/orphans.js';
import { startUpgrade } from './composition/upgrade.js';
import { isClustered } from './config/rules.js';
import { redactConfig } from './config/redact.js';
import type { Config } from './config/schema.js';
import { type Clock, systemClock } from './lifecycle/clock.js';
import { Closer } from './lifecycle/closer.js';
import { untilAborted } from './lifecycle/deadline.js';
import { QUIET_COLLECTOR_DEFAULTS, QuietCollector } from './lifecycle/quiet-collector.js';
import { Backoff } from './lifecycle/retry.js';
import { MembershipMetrics } from './membership/metrics.js';
import { MembershipMonitor } from './membership/monitor.js';
import type { Logger } from './observability/logger.js';
import { createRegistry } from './observability/metrics.js';
import { Health } from './ops/health.js';
import { OpsServer, opsLimits } from './ops/ops-server.js';
import { jobBusReadiness } from './routing/job-bus.js';
import { type BuildInfo, loadBuildInfo } from './version.js';

/** What a running process exposes to its caller (the serve command, tests). */
export interface App extends AsyncDisposable {
  readonly config: Config;
  readonly registry: Registry;
  readonly health: Health;
  /** Bound addresses. */
  readonly addresses: { readonly api?: AddressInfo; readonly ops: AddressInfo };
  /**
   * Shuts down: readiness off, the API stops accepting, no new incarnation; then every part in
   * the reverse of its start order. Idempotent; `await using app = await startApp(…)` calls it.
   */
  close(): Promise<void>;
}

/** Replaceable parts, for tests. */
export interface AppOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly build?: BuildInfo;
}

/**
 * Starts every part of hearth in dependency order and resolves with the running app.
 *
 * Aborting `signal` (SIGTERM during a start that keeps retrying an unreachable etcd) stops
 * waiting at once: whatever started is shut down, and the returned promise rejects with an
 * `AbortedError`. A step that fails shuts down what started before it and rejects with its
 * error. Either way the reason is logged before the shutdown begins.
 */
export async function startApp(config: Config, options: AppOptions, signal?: AbortSignal): Promise<App> {
  const logger = options.logger;
  const build = options.build ?? loadBuildInfo();
  const registry = createRegistry(build);
  const health = new Health();
  const closer = new Closer(logger);
  closer.quiesce('readiness off', () => health.startDraining());
  closer.add('stopped', () => logger.info('hearth stopped'));
  const ctx: CompositionContext = {
    config,
    clock: options.clock ?? systemClock,
    registry,
    logger,
    closer,
    retry: new Backoff({ initialDelayMs: config.retry.initialDelayMs, maxDelayMs: config.retry.maxDelayMs }),
  };
  const step = <T>(what: string, work: Promise<T>): Promise<T> => {
    logger.debug({ step: what }, 'starting');
    return untilAborted(work, `start-up (${what})`, signal);
  };
  const clustered = isClustered(config);
  const roles = { api: config.roles.includes('api'), worker: config.roles.includes('worker') };
  try {
    logger.info({ mode: clustered ? 'cluster' : 'single-node', config: redactConfig(config), version: build.version }, 'starting hearth');
    health.addLiveness('event-loop', () => ({ ok: true }));
    // Each role's code is loaded only when the process has that role (see the module doc).
    const api = roles.api ? await step('api modules', loadApiRole()) : undefined;
    const workerRole = roles.worker ? await step('worker modules', import('./composition/worker.js')) : undefined;
    workerRole?.addWorkerReadiness(health);
    // Token files first: a bad one is a configuration error, found before anything listens.
    const auth = api?.apiAuthFromConfig(config.api, logger.child({ component: 'api' }));
    if (auth) await step('api auth', auth.load());
    await step('data dir', mkdir(config.dataDir, { recursive: true }));
    const backends: Backends = await step('backends', openBackends(ctx, clustered));
    health.addLiveness('data-dir-lock', () => backends.healthy());
    // Not ready until every step below is done: the ops listener answers early (liveness, metrics),
    // and a balancer must not route to an API that does not listen yet, nor a rollout move on.
    let startedUp = false;
    health.addReadiness('start-up', () => (startedUp ? { ok: true } : { ok: false, detail: 'starting' }));
    const ops = closer.use('ops listener', new OpsServer(registry, health, logger.child({ component: 'ops' }), opsLimits(config.ops)));
    const opsAddress = await step('ops listener', ops.listen(config.ops.listen));
    // Before anything publishes or writes: this build may run on the cluster, and the bus and the
    // store follow the versions of the live processes (docs/upgrades.md).
    const upgrade = await step('upgrade', startUpgrade(ctx, { backends, health, build }, signal));
    const membershipMetrics = new MembershipMetrics(registry);
    const monitor = closer.use(
      'membership monitor',
      new MembershipMonitor({ membership: backends.membership, metrics: membershipMetrics, clock: ctx.clock, logger: logger.child({ component: 'membership' }), retry: ctx.retry }),
    );
    monitor.start();
    // The API publishes on the bus, the worker consumes from it; /readyz fails while it is down.
    const bus = closer.use('job bus', backends.jobBus);
    health.addReadiness('job-bus', jobBusReadiness(bus));
    await step('job bus', bus.start());
    const orphans = startOrphanDetection(ctx, backends.store, backends.membership);
    const apiAddress = api && auth ? await step('api', api.startApi(ctx, backends, orphans, auth, upgrade, build.version)) : undefined;
    if (workerRole) await workerRole.startWorkerRole(ctx, { backends, health, membershipMetrics, orphans, version: build.version }, signal);
    const addresses = { ops: opsAddress, ...(apiAddress ? { api: apiAddress } : {}) };
    // Memory back after a burst (a walk over every volume, a batch of operations) once the process is quiet.
    if (config.idleCollector) closer.use('quiet collector', new QuietCollector({ ...QUIET_COLLECTOR_DEFAULTS, logger: logger.child({ component: 'memory' }) })).start();
    startedUp = true;
    logger.info({ api: addresses.api, ops: addresses.ops }, 'hearth started');
    return {
      config,
      registry,
      health,
      addresses,
      close: () => closer.close(),
      [Symbol.asyncDispose]: () => closer.close(),
    };
  } catch (err) {
    if (signal?.aborted) logger.warn({ signal: signal.reason as unknown, err }, 'start-up interrupted by a signal; shutting down');
    else logger.fatal({ err }, 'hearth failed to start');
    await closer.close().catch(() => undefined);
    throw err;
  }
}

/** The backends of this process's mode; only that mode's adapters (and their clients) are loaded. */
async function openBackends(ctx: CompositionContext, clustered: boolean): Promise<Backends> {
  if (clustered) return (await import('./composition/cluster.js')).openClusterBackends(ctx);
  return (await import('./composition/single-node.js')).openSingleNodeBackends(ctx);
}

/** The API role's modules: fastify, every route and request schema, and the token files. */
async function loadApiRole(): Promise<{ readonly startApi: typeof startApi; readonly apiAuthFromConfig: typeof apiAuthFromConfig }> {
  const [{ startApi }, { apiAuthFromConfig }] = await Promise.all([import('./composition/api.js'), import('./api/auth-setup.js')]);
  return { startApi, apiAuthFromConfig };
}
