import type { Etcd3 } from 'etcd3';
import type { Registry } from 'prom-client';
import { hostId } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { KeyLayout } from '../etcd/keys.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { EtcdSession } from '../session/etcd-session.js';
import { LocalSession } from '../session/local-session.js';
import { SessionMetrics } from '../session/metrics.js';
import type { Session } from '../session/session.js';
import { SessionSupervisor, type SessionSource, staticSessionSource } from '../session/session-source.js';
import { EtcdLockService } from './etcd-lock-service.js';
import type { LockService } from './lock-service.js';
import { LocalLockService } from './local-lock-service.js';
import { LockMetrics } from './metrics.js';

/** Sessions and lock services of one process, for the composition root (`app.ts`). */
export interface Locking {
  /** One session per incarnation; subscribe with `onSession` to rebuild what rides on it. */
  readonly sessions: SessionSource;
  /** The lock service of `session` (one per incarnation: it dies with its session). */
  lockServiceFor(session: Session): LockService;
}

/** What {@link createClusterLocking} needs. */
export interface ClusterLockingOptions {
  /** From `createEtcdClient(config.etcd)`. */
  readonly client: Etcd3;
  readonly config: Pick<Config, 'host' | 'backend' | 'leaseTtlMs' | 'leaseMarginMs' | 'etcd'>;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly clock?: Clock;
}

/**
 * Cluster mode: a `SessionSupervisor` of etcd sessions (a new incarnation after each loss) and
 * an `EtcdLockService` per session, sharing one set of metrics. Call `sessions.start()` after
 * the ops listener is up; close the lock service of a session before the session itself.
 *
 * ```ts
 * const locking = createClusterLocking({ client, config, registry, logger });
 * locking.sessions.onSession((session) => {
 *   const locks = locking.lockServiceFor(session);   // + membership's alive key on `session`
 * });
 * locking.sessions.start();
 * ```
 */
export function createClusterLocking(options: ClusterLockingOptions): Locking & { readonly sessions: SessionSupervisor } {
  const sessionMetrics = new SessionMetrics(options.registry);
  const lockMetrics = new LockMetrics(options.registry);
  const keys = new KeyLayout(options.config.etcd.prefix);
  const host = hostId(options.config);
  const sessions = new SessionSupervisor({
    open: (signal) =>
      EtcdSession.open({
        client: options.client,
        host,
        leaseTtlMs: options.config.leaseTtlMs,
        leaseMarginMs: options.config.leaseMarginMs,
        callTimeoutMs: options.config.etcd.callTimeoutMs,
        logger: options.logger.child({ component: 'session' }),
        metrics: sessionMetrics,
        signal,
        ...(options.clock ? { clock: options.clock } : {}),
      }),
    logger: options.logger.child({ component: 'session' }),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  return {
    sessions,
    lockServiceFor: (session) =>
      new EtcdLockService({
        client: options.client,
        keys,
        session,
        callTimeoutMs: options.config.etcd.callTimeoutMs,
        metrics: lockMetrics,
        logger: options.logger.child({ component: 'locks', incarnation: session.incarnation }),
      }),
  };
}

/**
 * Single-node mode: one `LocalSession` for the life of the process and one in-process
 * `LocalLockService` (`distributed: false`; pair it with `DataDirLock`, which `app.ts` takes).
 */
export function createSingleNodeLocking(options: { readonly config: Pick<Config, 'host' | 'backend'>; readonly registry: Registry }): SingleNodeLocking {
  const session = new LocalSession(hostId(options.config));
  const locks = new LocalLockService({ metrics: new LockMetrics(options.registry), incarnation: session.incarnation });
  return { sessions: staticSessionSource(session), lockServiceFor: () => locks, local: locks };
}

/** Single-node locking, with its one lock service (whose table the operator's lock view reads). */
export interface SingleNodeLocking extends Locking {
  readonly local: LocalLockService;
}
