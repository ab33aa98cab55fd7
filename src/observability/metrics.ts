import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { BuildInfo } from '../version.js';

/**
 * Creates hearth's own Prometheus registry (never prom-client's global one) with the default
 * process and Node.js metrics and `hearth_build_info`. Each concern declares its instruments
 * against this registry in its own `metrics.ts`.
 */
export function createRegistry(build: BuildInfo): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: 'hearth_build_info',
    help: 'Build information of the running hearth; always 1.',
    labelNames: ['version', 'revision', 'nodejs_version'] as const,
    registers: [registry],
  });
  info.set({ version: build.version, revision: build.revision, nodejs_version: process.version }, 1);
  return registry;
}

/** Histogram buckets for waits that can reach a lease TTL (5 ms … 41 s). */
export const WAIT_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 41];

/** Histogram buckets for holds and operations that can run for minutes or hours. */
export const DURATION_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200];
