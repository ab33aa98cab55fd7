import type { Etcd3 } from 'etcd3';
import type { Config } from '../../../src/config/schema.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { waitFor } from '../../support/wait.js';

/** The etcd section of a configuration, for tests. */
export function etcdConfig(endpoints: readonly string[], prefix: string, callTimeoutMs = 2_000): Config['etcd'] {
  return { endpoints: [...endpoints], prefix, username: '', password: '', passwordFile: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs };
}

/** One simulated worker: its own client, session and lock service. */
export interface Worker {
  readonly client: Etcd3;
  readonly session: EtcdSession;
  readonly locks: EtcdLockService;
  close(): Promise<void>;
}

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly host?: string;
  readonly leaseTtlMs?: number;
  readonly leaseMarginMs?: number;
  readonly callTimeoutMs?: number;
}

let workers = 0;

/** Starts a worker against `endpoints` (e.g. a proxy in front of etcd). */
export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const callTimeoutMs = options.callTimeoutMs ?? 2_000;
  const client = createEtcdClient(etcdConfig(options.endpoints, options.prefix, callTimeoutMs));
  const session = await EtcdSession.open({
    client,
    host: options.host ?? `worker-${++workers}@test`,
    leaseTtlMs: options.leaseTtlMs ?? 5_000,
    leaseMarginMs: options.leaseMarginMs ?? 1_000,
    callTimeoutMs,
  });
  const locks = new EtcdLockService({ client, keys: new KeyLayout(options.prefix), session, callTimeoutMs });
  return {
    client,
    session,
    locks,
    async close() {
      await locks.close();
      await session.close();
      client.close();
    },
  };
}

/** Waits until `count` keys sit under the lock `name` (holder plus waiters). */
export async function waitQueued(client: Etcd3, prefix: string, name: string, count: number): Promise<void> {
  await waitFor(async () => (await client.getAll().prefix(`${prefix}/locks/${name}/`).keys()).length >= count, {
    timeoutMs: 10_000,
    intervalMs: 10,
    what: `${count} contenders on lock ${name}`,
  });
}

/** The etcd calls a client made of the kinds the lock makes (recorded, then passed through). */
export interface CallLog {
  txns: number;
  ranges: number;
  /** The key of every watch created, in order. */
  readonly watched: string[];
}

/** Records `client`'s transactions, ranges and watches from now on; the calls go through unchanged. */
export function recordCalls(client: Etcd3): CallLog {
  const log: CallLog = { txns: 0, ranges: 0, watched: [] };
  const kv = client.kv;
  const txn = kv.txn.bind(kv);
  const range = kv.range.bind(kv);
  kv.txn = (req, options) => {
    log.txns++;
    return txn(req, options);
  };
  kv.range = (req, options) => {
    log.ranges++;
    return range(req, options);
  };
  const watch = client.watch.bind(client);
  client.watch = () => {
    const builder = watch();
    const key = builder.key.bind(builder);
    builder.key = (k) => {
      log.watched.push(k.toString());
      return key(k);
    };
    return builder;
  };
  return log;
}
