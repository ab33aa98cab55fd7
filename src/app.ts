import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { apiAuthFromConfig } from './api/auth-setup.js';
import { ApiServer } from './api/server.js';
import { redactConfig } from './config/redact.js';
import { isClustered } from './config/rules.js';
import type { Config } from './config/schema.js';
import type { Clock } from './lifecycle/clock.js';
import type { Logger } from './observability/logger.js';
import { createRegistry } from './observability/metrics.js';
import { Health } from './ops/health.js';
import { OpsServer } from './ops/ops-server.js';
import { type BuildInfo, loadBuildInfo } from './version.js';

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

  const startSteps: Step[] = [
    // Token files first: a bad one is a configuration error, found before anything listens.
    ...(apiAuth ? [{ name: 'api auth', run: () => apiAuth.load() }] : []),
    { name: 'data dir', run: () => mkdir(config.dataDir, { recursive: true }) },
    { name: 'ops listener', run: async () => (addresses.ops = await ops.listen(config.ops.listen)) },
  ];
  if (api) startSteps.push({ name: 'api listener', run: async () => (addresses.api = await api.listen(config.api.listen)) });

  const stopSteps: Step[] = [
    { name: 'readiness off', run: async () => health.startDraining() },
    ...(api ? [{ name: 'api listener', run: () => api.close() }] : []),
    { name: 'ops listener', run: () => ops.close() },
  ];

  health.addLiveness('event-loop', () => ({ ok: true }));

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
