import { afterAll, beforeAll } from 'vitest';
import type { EtcdClusterOptions } from './etcd-cluster.js';
import type { RabbitClusterOptions } from './rabbitmq-cluster.js';
import { acquireEtcdCluster, acquireRabbitCluster, type EtcdTopology, type RabbitTopology } from './topology.js';

/**
 * Vitest fixtures for the production topology: call at the top of a test file (or a describe);
 * the cluster starts in `beforeAll`, only for the files that ask, and stops in `afterAll`. The
 * returned getter is for use inside tests and hooks.
 *
 * ```ts
 * const etcd = useEtcdCluster();
 * it('survives the leader', async () => { await etcd().local().member(0).kill(); … });
 * ```
 */
export function useEtcdCluster(options: EtcdClusterOptions = {}): () => EtcdTopology {
  return fixture('useEtcdCluster', () => acquireEtcdCluster(options));
}

/** The RabbitMQ cluster for a test file (see {@link useEtcdCluster}). */
export function useRabbitCluster(options: RabbitClusterOptions = {}): () => RabbitTopology {
  // The start may be retried (a port race): allow its budget twice, beyond the default hook timeout.
  return fixture('useRabbitCluster', () => acquireRabbitCluster(options), 2 * (options.startTimeoutMs ?? 120_000) + 30_000);
}

function fixture<T extends { stop(): Promise<void> }>(name: string, acquire: () => Promise<T>, timeoutMs?: number): () => T {
  let value: T | undefined;
  beforeAll(async () => {
    value = await acquire();
  }, timeoutMs);
  afterAll(async () => {
    await value?.stop();
  });
  return () => {
    if (!value) throw new Error(`${name}(): the cluster starts in beforeAll; use the getter inside a test or hook`);
    return value;
  };
}
