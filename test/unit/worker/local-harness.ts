// The volume manager over the single-node adapters (SQLite, local membership, session and
// locks, the in-process bus, the fake driver with a journal): everything real but the network.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FakeVolumeDriver } from '../../../src/drivers/fake-volume-driver.js';
import { checkJournal, type JournalReport, parseJournal } from '../../../src/drivers/fake-journal.js';
import type { OwnerRef } from '../../../src/identity.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LockMetrics } from '../../../src/locks/metrics.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import type { Member } from '../../../src/membership/membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JobBus } from '../../../src/routing/job-bus.js';
import { PublishStamps } from '../../../src/volumes/publish-stamps.js';
import { JobBusPublisher } from '../../../src/volumes/job-bus-publisher.js';
import { LocalBroker } from '../../../src/routing/local-broker.js';
import { LocalJobBus } from '../../../src/routing/local-job-bus.js';
import { LocalSession } from '../../../src/session/local-session.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { ADMIT_ALL } from '../../../src/volumes/cluster-admission.js';
import { VolumeService, type RequestContext } from '../../../src/volumes/volume-service.js';
import type { Incarnation, IncarnationEvent, Incarnations } from '../../../src/incarnation/incarnation.js';
import { workerMetrics } from '../../../src/worker/metrics.js';
import { OpClaimer } from '../../../src/worker/op-claim.js';
import { OpPublisher } from '../../../src/worker/op-publisher.js';
import { type EpochSource, OperationRunner } from '../../../src/worker/operation-runner.js';
import { RepublishSweeper } from '../../../src/worker/sweeper.js';
import { VolumeManager } from '../../../src/worker/volume-manager.js';
import { type BackendGate, type BeforeConsumeHook, Worker } from '../../../src/worker/worker.js';
import type { DriverCall } from '../../../src/drivers/volume-driver.js';
import { abortNotice, abortRequestOf } from '../../../src/routing/abort-notice.js';
import type { Admission } from '../../../src/worker/admission.js';
import { type ForceDeleteHooks, replacedOf } from '../../../src/worker/force-delete.js';

export const CLUSTER = 'ceph@rbd';
export const HOST = 'n1@rbd';
export const ADMIN: RequestContext = { projectId: 'admin', userId: 'admin', isAdmin: true };

/**
 * Incarnations driven by the test: join, end (as a lost session would) and start the next one
 * on the local membership. One lock service per incarnation, as in the app.
 */
export class TestIncarnations implements Incarnations {
  private inc: Incarnation | undefined;
  private readonly listeners = new Set<(change: IncarnationEvent) => void>();
  private readonly lockMetrics: LockMetrics;

  constructor(
    private readonly membership: LocalMembership,
    registry: Registry,
  ) {
    this.lockMetrics = new LockMetrics(registry);
  }

  current(): Incarnation | undefined {
    return this.inc?.member.joined ? this.inc : undefined;
  }

  subscribe(listener: (change: IncarnationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Joins as a new incarnation; tells subscribers when it follows an earlier one. */
  async join(): Promise<Member> {
    const previous = this.inc?.member.owner;
    const session = new LocalSession(HOST);
    const member = await this.membership.join({ identity: { cluster: CLUSTER, host: HOST, zone: 'nova' }, binary: 'cinder-volume', version: 'test', session });
    const locks = new LocalLockService({ metrics: this.lockMetrics, incarnation: session.incarnation });
    this.inc = { member, session, locks };
    if (previous) this.emit({ type: 'started', incarnation: this.inc, previous, reason: 'session-lost' });
    return member;
  }

  /** Ends the current incarnation as a lost session would: it leaves, its locks go. */
  async end(): Promise<OwnerRef> {
    const inc = this.inc;
    if (!inc) throw new Error('no incarnation');
    await inc.member.leave();
    await inc.locks.close();
    this.emit({ type: 'ended', owner: inc.member.owner, reason: 'session-lost' });
    return inc.member.owner;
  }

  private emit(change: IncarnationEvent): void {
    for (const l of this.listeners) l(change);
  }
}

/** Options of {@link localWorker}. */
export interface LocalWorkerOptions {
  readonly latencyMs?: number;
  readonly failureRate?: number;
  readonly maxConcurrentOps?: number;
  readonly sweepIntervalMs?: number;
  readonly staleAfterMs?: number;
  /** The sweeper counts an unstamped op as published when recorded (the single node's composition). */
  readonly publishedWhenRecorded?: boolean;
  readonly beforeConsume?: readonly BeforeConsumeHook[];
  /** Do not start the worker (tests that drive the manager by hand). */
  readonly start?: boolean;
  /** The backend's state the worker follows (default: always up). */
  readonly backend?: BackendGate;
  /** Fake driver calls that never finish by themselves (see FakeVolumeDriver). */
  readonly hang?: readonly DriverCall[];
  readonly hangIgnoresAbort?: boolean;
  /** The capacity gate of creates and extends. */
  readonly admission?: Admission;
  /** How long a force-delete waits for the run it replaced (default 5 s). */
  readonly forceDeleteWaitMs?: number;
  /** The backend epoch runs work under, from the membership made here (default: none). */
  readonly epoch?: (membership: LocalMembership) => EpochSource;
}

/** One worker process's parts, in process. */
export async function localWorker(options: LocalWorkerOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-worker-'));
  const registry = new Registry();
  const clock = systemClock;
  const logger = silentLogger();
  const store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(registry) });
  const membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), clock);
  const incarnations = new TestIncarnations(membership, registry);
  await incarnations.join();
  const broker = new LocalBroker();
  const busFor = (host: string): JobBus =>
    new LocalJobBus({ prefix: 'hearth', prefetch: 8, maxDeliveries: 5 }, { broker, identity: { cluster: CLUSTER, host }, logger, registry: new Registry() });
  const bus = busFor(HOST);
  const journal = join(dir, 'journal.jsonl');
  const driver = await FakeVolumeDriver.open({
    latencyMs: options.latencyMs ?? 0,
    failureRate: options.failureRate ?? 0,
    random: () => 0,
    journalPath: journal,
    ...(options.hang ? { hang: options.hang, hangIgnoresAbort: options.hangIgnoresAbort ?? false } : {}),
  });
  /** What force-deletes that timed out told their users. */
  const forceTimeouts: string[] = [];
  const forceDelete: ForceDeleteHooks = {
    waitMs: options.forceDeleteWaitMs ?? 5_000,
    abortReplaced: async (op) => {
      const replaced = replacedOf(op);
      if (replaced?.owner) await bus.publishNotice(abortNotice({ type: op.type, id: op.id, opId: replaced.opId, reason: 'force-delete (worker)' }));
    },
    timedOut: async (_op, _record, why) => void forceTimeouts.push(why),
  };
  const publisher = new OpPublisher({ bus, store, clock, logger, timeoutMs: 1_000 });
  const claimer = new OpClaimer({ store, membership });
  const runner = new OperationRunner({
    store,
    driver,
    incarnations,
    publisher,
    metrics: workerMetrics(registry),
    clock,
    logger,
    retry: Backoff.constant(20),
    forceDelete,
    ...(options.admission ? { admission: options.admission } : {}),
    ...(options.epoch ? { epoch: options.epoch(membership) } : {}),
  });
  const notices = await bus.subscribeNotices((n) => {
    const request = abortRequestOf(n);
    if (request) runner.abort(request.opId, request.reason);
  });
  const manager = new VolumeManager({ store, claimer, runner, incarnations, clock, logger, maxConcurrentOps: options.maxConcurrentOps ?? 8, retry: Backoff.constant(20), ...(options.backend ? { canTake: () => options.backend?.up ?? true } : {}) });
  const sweeper = new RepublishSweeper({ store, publisher, incarnations, clock, logger, cluster: CLUSTER, intervalMs: options.sweepIntervalMs ?? 60_000, ...(options.staleAfterMs ? { staleAfterMs: options.staleAfterMs } : {}), ...(options.publishedWhenRecorded ? { publishedWhenRecorded: true } : {}) });
  const worker = new Worker({ bus, incarnations, manager, sweeper, logger, ...(options.beforeConsume ? { beforeConsume: options.beforeConsume } : {}), ...(options.backend ? { backend: options.backend } : {}) });
  const stamps = new PublishStamps({ store, clock, logger, delayMs: 200 });
  const api = new VolumeService({
    store,
    publisher: new JobBusPublisher(bus),
    stamps,
    admission: ADMIT_ALL,
    clock,
    logger,
    cluster: CLUSTER,
    availabilityZone: 'nova',
    abortRun: async (r) => void (await bus.publishNotice(abortNotice(r))),
  });
  if (options.start ?? true) await worker.start();
  return {
    dir,
    registry,
    store,
    membership,
    incarnations,
    broker,
    bus,
    busFor,
    driver,
    publisher,
    claimer,
    runner,
    manager,
    sweeper,
    worker,
    api,
    forceTimeouts,
    /** Jobs waiting in the cluster queue. */
    queued: () => broker.queue(`hearth.volume.${CLUSTER}`, false)?.depth ?? 0,
    async journal(): Promise<JournalReport> {
      const { entries, malformed } = parseJournal(await readFile(journal, 'utf8').catch(() => ''));
      return checkJournal(entries, malformed.length);
    },
    async metric(name: string, labels: Record<string, string>): Promise<number> {
      const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
      const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
      return v?.value ?? 0;
    },
    stamps,
    async close(): Promise<void> {
      await stamps.close();
      await notices.cancel();
      // A call that ignores its aborts ends only when the driver closes.
      const draining = worker.drain(0).catch(() => undefined);
      if (options.hangIgnoresAbort) await driver.close();
      await draining;
      await bus.close();
      await driver.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type LocalWorker = Awaited<ReturnType<typeof localWorker>>;
