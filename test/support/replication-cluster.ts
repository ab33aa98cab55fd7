import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from './context.js';
import { type HearthProcess, startHearth } from './hearth-process.js';
import { ClusterClient, memberEnv } from './orphans-cluster.js';
import { ReplicationAdmin } from './replication-api.js';
import { makeTestDir, removeTestDir } from './test-dirs.js';

/** Options of {@link useReplicationCluster}. */
export interface ReplicationClusterOptions {
  /** The cluster's name: its members serve `<cluster>@be`. */
  readonly cluster: string;
  /** The processes' names are `<name>-api` and `<name>-<host>`; the cluster's name by default. */
  readonly name?: string;
  /**
   * Settings over {@link memberEnv}'s, for every member. A function is given the root dir (made
   * by then), to make and name dirs in it (e.g. the file driver's primary and target).
   */
  readonly env?: Readonly<Record<string, string>> | ((root: string) => Record<string, string> | Promise<Record<string, string>>);
  /** Worker-only members started in `beforeAll`, one after the other, after the API process. */
  readonly workers?: readonly string[];
}

/**
 * A cluster of real `hearth serve` processes on the test's own etcd prefix and AMQP vhost, as
 * the replication tests run it: a temp root dir holding the fake driver's journal, one API-only
 * process, and worker-only members by host. Everything is set in `beforeAll` (read it inside a
 * test or hook) and stopped in `afterAll`: every process still in {@link workers}, the etcd and
 * AMQP contexts, the root dir.
 */
export class ReplicationCluster {
  /** The worker processes by host: {@link startWorker} adds one, {@link stopWorker} removes it. */
  readonly workers = new Map<string, HearthProcess>();
  private state: { etcd: EtcdTestContext; amqp?: AmqpTestContext; root?: string; env?: Record<string, string>; api?: HearthProcess; admin?: ReplicationAdmin; client?: ClusterClient } | undefined;

  constructor(private readonly options: ReplicationClusterOptions) {}

  /** The test's etcd context (its prefix and a client for assertions). */
  get etcd(): EtcdTestContext {
    return this.started('etcd', this.state?.etcd);
  }

  /** The temp dir of the cluster's files: the journal, and whatever the test's `env` puts there. */
  get root(): string {
    return this.started('root', this.state?.root);
  }

  /** The fake driver's journal, shared by every member. */
  get journal(): string {
    return join(this.root, 'journal.jsonl');
  }

  /** Every member's `HEARTH_*` settings (without its host and roles). */
  get env(): Record<string, string> {
    return this.started('env', this.state?.env);
  }

  /** The API-only process. */
  get api(): HearthProcess {
    return this.started('api', this.state?.api);
  }

  /** A {@link ClusterClient} of the API process. */
  get client(): ClusterClient {
    return this.started('client', this.state?.client);
  }

  /** One admin call to the API process at 3.26 ({@link ReplicationAdmin.call}). */
  readonly call = (method: string, path: string, body?: unknown): ReturnType<ReplicationAdmin['call']> => this.started('admin', this.state?.admin).call(method, path, body);

  /** The cluster as the API process shows it (`GET /clusters/<cluster>@be`). */
  readonly cluster = (): Promise<Record<string, unknown>> => this.started('admin', this.state?.admin).cluster(`${this.options.cluster}@be`);

  /** Starts the worker-only member `host` (settings `over` the cluster's) and records it in {@link workers}. */
  readonly startWorker = async (host: string, over: Record<string, string> = {}): Promise<HearthProcess> => {
    const w = await startHearth({ name: `${this.name}-${host}`, env: { ...this.env, HEARTH_HOST: host, HEARTH_ROLES: 'worker', ...over } });
    this.workers.set(host, w);
    return w;
  };

  /** Stops the worker `host` (SIGTERM) and forgets it. */
  readonly stopWorker = async (host: string): Promise<void> => {
    await this.workers.get(host)?.stop();
    this.workers.delete(host);
  };

  /** Starts it: see {@link useReplicationCluster}. */
  async start(): Promise<void> {
    const state: NonNullable<ReplicationCluster['state']> = { etcd: useEtcd() };
    this.state = state;
    state.amqp = await useAmqp();
    state.root = await makeTestDir(`hearth-repl-${this.name}-`);
    const over = typeof this.options.env === 'function' ? await this.options.env(state.root) : this.options.env;
    state.env = memberEnv(state.etcd, state.amqp, this.options.cluster, this.journal, over);
    state.api = await startHearth({ name: `${this.name}-api`, env: { ...state.env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    state.admin = new ReplicationAdmin(state.api.apiUrl);
    state.client = new ClusterClient(state.api);
    for (const host of this.options.workers ?? []) await this.startWorker(host);
  }

  /** Stops what {@link start} and the test started, as far as it got. A paused worker is resumed by its stop. */
  async stop(): Promise<void> {
    const state = this.state;
    if (!state) return;
    await Promise.all([state.api?.stop(), ...[...this.workers.values()].map((w) => w.stop())]);
    this.workers.clear();
    await state.amqp?.close();
    await state.etcd.close();
    if (state.root !== undefined) await removeTestDir(state.root);
    this.state = undefined;
  }

  private get name(): string {
    return this.options.name ?? this.options.cluster;
  }

  private started<T>(what: string, value: T | undefined): T {
    if (value === undefined) throw new Error(`ReplicationCluster.${what}: the cluster starts in beforeAll; use it inside a test or hook`);
    return value;
  }
}

/**
 * A {@link ReplicationCluster} for the test file (or describe) that calls it: started in
 * `beforeAll`, stopped in `afterAll`.
 *
 * ```ts
 * const { workers, call, cluster } = useReplicationCluster({ cluster: 'pt', workers: ['a', 'b', 'c'] });
 * ```
 */
export function useReplicationCluster(options: ReplicationClusterOptions): ReplicationCluster {
  const fixture = new ReplicationCluster(options);
  beforeAll(() => fixture.start());
  afterAll(() => fixture.stop());
  return fixture;
}
