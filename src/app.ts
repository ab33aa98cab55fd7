import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import type { Registry } from 'prom-client';
import { apiAuthFromConfig } from './api/auth-setup.js';
import { clusterRoutes } from './api/clusters.js';
import { ApiServer } from './api/server.js';
import { redactConfig } from './config/redact.js';
import { clusterId, hostId, isClustered } from './config/rules.js';
import type { Config } from './config/schema.js';
import { createDriver } from './drivers/create-driver.js';
import { requireActiveActive, type VolumeDriver } from './drivers/volume-driver.js';
import { createEtcdClient } from './etcd/client.js';
import { KeyLayout } from './etcd/keys.js';
import { VOLUME_BINARY } from './identity.js';
import { type Clock, systemClock } from './lifecycle/clock.js';
import { DataDirLock } from './locks/data-dir-lock.js';
import { createClusterLocking, createSingleNodeLocking, type Locking } from './locks/factory.js';
import { MembershipClusterAdmission } from './membership/cluster-status.js';
import { EtcdMembership } from './membership/etcd-membership.js';
import { LocalMembership } from './membership/local-membership.js';
import { LocalRecordFile } from './membership/local-store.js';
import type { Membership } from './membership/membership.js';
import { MembershipMetrics } from './membership/metrics.js';
import { MembershipMonitor } from './membership/monitor.js';
import { MemberSupervisor } from './membership/supervisor.js';
import type { Logger } from './observability/logger.js';
import { createRegistry } from './observability/metrics.js';
import { Health } from './ops/health.js';
import { OpsServer } from './ops/ops-server.js';
import { createJobBus, jobBusReadiness } from './routing/create-job-bus.js';
import { JobBusPublisher } from './routing/job-bus-publisher.js';
import { EtcdStateStore } from './state/etcd-state-store.js';
import { createStateMetrics } from './state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from './state/sqlite-state-store.js';
import type { StateStore } from './state/state-store.js';
import { type BuildInfo, loadBuildInfo } from './version.js';
import { volumeRoutes } from './volumes/volume-routes.js';
import { VolumeService } from './volumes/volume-service.js';

/** What a running process exposes to its caller (the serve command, tests). */
export interface App {
  readonly config: Config;
  readonly registry: Registry;
  readonly health: Health;
  /** Bound addresses, known once `start()` resolved. */
  readonly addresses: { readonly api?: AddressInfo; readonly ops?: AddressInfo };
  /** Starts every component in dependency order. */
  start(): Promise<void>;
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
}

interface Step {
  readonly name: string;
  readonly run: () => Promise<unknown>;
}

/** What the state store factory needs. */
interface StateDeps {
  readonly clock: Clock;
  readonly registry: Registry;
  readonly logger: Logger;
  /** The process's etcd client (cluster mode). */
  readonly etcd: () => Etcd3;
}

/** The state of record: SQLite under `dataDir` on a single node, etcd in a cluster. */
function createStateStore(config: Config, deps: StateDeps): StateStore {
  const metrics = createStateMetrics(deps.registry);
  if (!isClustered(config)) return SqliteStateStore.open({ path: join(config.dataDir, SQLITE_STATE_FILE), clock: deps.clock, metrics });
  return new EtcdStateStore({ client: deps.etcd(), keys: new KeyLayout(config.etcd.prefix), clock: deps.clock, metrics, logger: deps.logger.child({ component: 'state' }) });
}

/**
 * The composition root: the only place that picks concrete adapters. With no etcd and no
 * RabbitMQ configured it builds the single-node daemon; otherwise a cluster member.
 */
export function createApp(config: Config, options: AppOptions): App {
  const logger = options.logger;
  const build = options.build ?? loadBuildInfo();
  const registry = createRegistry(build);
  const health = new Health();
  const ops = new OpsServer(registry, health, logger.child({ component: 'ops' }));
  const apiLogger = logger.child({ component: 'api' });
  const apiAuth = config.roles.includes('api') ? apiAuthFromConfig(config.api, apiLogger) : undefined;
  const api = apiAuth ? new ApiServer({ logger: apiLogger, maxBodyBytes: config.api.maxBodyBytes, auth: apiAuth.options }) : undefined;
  const addresses: { api?: AddressInfo; ops?: AddressInfo } = {};
  const clock = options.clock ?? systemClock;
  let etcd: Etcd3 | undefined;
  const etcdClient = (): Etcd3 => (etcd ??= createEtcdClient(config.etcd));
  let store: StateStore | undefined;
  // Single node: one daemon per data dir (a second one exits 1 with DATA_DIR_LOCKED). Not in a
  // cluster, where the data dir may sit on a mount the members share.
  let dataDirLock: DataDirLock | undefined;
  const lockDataDir = async (): Promise<void> => {
    dataDirLock = await DataDirLock.acquire(config.dataDir, {
      onCompromised: (err) => logger.fatal({ err }, 'lost the data directory lock; another process may use the store'),
    });
  };

  const worker = config.roles.includes('worker');

  // Membership: the API reads it in both roles; a worker joins on its session (etcd: one lease
  // per incarnation, renewed by the session supervisor; single node: the process itself).
  let membership: Membership | undefined;
  let monitor: MembershipMonitor | undefined;
  let locking: Locking | undefined;
  let member: MemberSupervisor | undefined;
  const membershipMetrics = new MembershipMetrics(registry);
  const membershipLogger = logger.child({ component: 'membership' });
  const openMembership = async (): Promise<void> => {
    membership = isClustered(config)
      ? new EtcdMembership({ client: etcdClient(), keys: new KeyLayout(config.etcd.prefix), clock, logger: membershipLogger })
      : new LocalMembership(await LocalRecordFile.open(join(config.dataDir, 'membership.json')), clock);
    monitor = new MembershipMonitor({ membership, metrics: membershipMetrics, clock, logger: membershipLogger, retryDelayMs: 1_000 });
    monitor.start();
    api?.register(clusterRoutes(membership, VOLUME_BINARY));
  };
  const joinCluster = async (): Promise<void> => {
    if (!membership) throw new Error('membership must open before the worker joins');
    if (isClustered(config)) {
      const cluster = createClusterLocking({ client: etcdClient(), config, registry, logger, clock });
      cluster.sessions.start();
      locking = cluster;
    } else {
      locking = createSingleNodeLocking({ config, registry });
    }
    member = new MemberSupervisor({
      membership,
      join: { identity: { cluster: clusterId(config), host: hostId(config), zone: config.zone }, binary: VOLUME_BINARY, version: build.version },
      sessions: locking.sessions,
      clock,
      logger: membershipLogger,
      metrics: membershipMetrics,
      reportIntervalMs: config.reportIntervalMs,
      previousIncarnationWaitMs: config.leaseTtlMs + 1_000,
      retryDelayMs: 1_000,
    });
    await member.start();
  };
  if (worker) health.addReadiness('membership', () => (member?.joined ? { ok: true } : { ok: false, detail: 'not joined to the cluster' }));
  // The job bus: RabbitMQ in a cluster, in-process on a single node. The API publishes on it,
  // the worker consumes from it; /readyz fails while it is not connected.
  const jobBus = createJobBus(config, { identity: { cluster: clusterId(config), host: hostId(config) }, logger, registry });
  health.addReadiness('job-bus', jobBusReadiness(jobBus));
  let driver: VolumeDriver | undefined;

  const startSteps: Step[] = [
    // Token files first: a bad one is a configuration error, found before anything listens.
    ...(apiAuth ? [{ name: 'api auth', run: () => apiAuth.load() }] : []),
    { name: 'data dir', run: () => mkdir(config.dataDir, { recursive: true }) },
    ...(isClustered(config) ? [] : [{ name: 'data dir lock', run: lockDataDir }]),
    { name: 'state store', run: async () => (store = createStateStore(config, { clock, registry, logger, etcd: etcdClient })) },
    { name: 'ops listener', run: async () => (addresses.ops = await ops.listen(config.ops.listen)) },
    { name: 'membership', run: openMembership },
    { name: 'job bus', run: () => jobBus.start() },
  ];
  if (api) {
    startSteps.push({
      name: 'volume api',
      run: async () => {
        if (!store) throw new Error('the state store must open before the volume API');
        if (!membership) throw new Error('membership must open before the volume API');
        const service = new VolumeService({
          store,
          publisher: new JobBusPublisher(jobBus),
          admission: new MembershipClusterAdmission(membership, VOLUME_BINARY),
          clock,
          logger: logger.child({ component: 'volumes' }),
          cluster: clusterId(config),
          availabilityZone: config.zone,
        });
        api.register(volumeRoutes(service));
      },
    });
    startSteps.push({ name: 'api listener', run: async () => (addresses.api = await api.listen(config.api.listen)) });
  }
  if (worker) {
    startSteps.push({
      name: 'volume driver',
      run: async () => {
        driver = await createDriver(config, { logger });
        // Cinder's SUPPORTS_ACTIVE_ACTIVE gate: a clustered worker refuses a node-local driver.
        // It refuses before joining, so it never shows as a member.
        requireActiveActive(driver, isClustered(config));
      },
    });
  }
  if (worker) startSteps.push({ name: 'join cluster', run: joinCluster });

  const stopSteps: Step[] = [
    { name: 'readiness off', run: async () => health.startDraining() },
    ...(api ? [{ name: 'api listener', run: () => api.close() }] : []),
    // Workers stop consuming (the broker requeues what was not settled) before leaving.
    { name: 'job bus', run: () => jobBus.close() },
    { name: 'volume driver', run: async () => driver?.close() },
    // Membership is left (peers see it at once), then the session lease revoked.
    { name: 'membership leave', run: async () => member?.close() },
    { name: 'sessions', run: async () => locking?.sessions.close() },
    { name: 'membership', run: async () => Promise.all([monitor?.close(), membership?.close()]) },
    { name: 'state store', run: async () => store?.close() },
    { name: 'etcd client', run: async () => etcd?.close() },
    { name: 'ops listener', run: () => ops.close() },
    { name: 'data dir lock', run: async () => dataDirLock?.release() },
  ];

  health.addLiveness('event-loop', () => ({ ok: true }));
  health.addLiveness('data-dir-lock', () =>
    dataDirLock?.compromised ? { ok: false, detail: 'the data directory lock was lost' } : { ok: true },
  );

  let started: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  return {
    config,
    registry,
    health,
    addresses,
    start() {
      started ??= (async () => {
        logger.info(
          { mode: isClustered(config) ? 'cluster' : 'single-node', config: redactConfig(config), version: build.version },
          'starting hearth',
        );
        for (const step of startSteps) {
          logger.debug({ step: step.name }, 'starting');
          await step.run();
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
