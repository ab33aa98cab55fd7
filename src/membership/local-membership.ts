import type { BackendReport } from './backend-report.js';
import { AbortedError, AlreadyAliveError, FencedError, IllegalStateError, NotDistributedError } from '../errors.js';
import { type Fence, NO_FENCE } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import { EventQueue } from '../concurrency/event-queue.js';
import type { IncarnationEnd, IncarnationRecord, IncarnationView } from './incarnation-records.js';
import type { LocalRecordFile, LocalRecords } from './local-store.js';
import type {
  AdvanceEpochResult,
  ClusterChange,
  ClusterRecordEvent,
  ClusterUpdateResult,
  HeartbeatResult,
  JoinRequest,
  Member,
  Membership,
  MembershipEvent,
  RecordEndResult,
  RemoveServiceResult,
} from './membership.js';
import { failedCondition } from './replication-fields.js';
import { replicationOnJoin } from './replication.js';
import {
  type AliveMember,
  type ClusterRecord,
  type MembershipSnapshot,
  newClusterRecord,
  type ServiceRecord,
  serviceForJoin,
  withClusterDisabled,
} from './records.js';

/**
 * Membership of the single node: one member, this process. Cluster and service records are
 * kept in a file under the data directory (they survive restarts, so a disabled cluster stays
 * disabled); the alive entry is in memory, so the member is up exactly while this process runs
 * and has joined. A cluster whose records name a second host refuses to run here
 * (`NOT_DISTRIBUTED`): that needs etcd.
 */
export class LocalMembership implements Membership {
  readonly distributed = false;
  private readonly alive = new Map<string, AliveMember>();
  private readonly watchers = new Set<EventQueue<MembershipEvent>>();
  private readonly endWaiters = new Map<string, Set<(end: IncarnationEnd) => void>>();
  private readonly clusterWatchers = new Set<{ readonly name: string; readonly binary: string; readonly queue: EventQueue<ClusterRecordEvent> }>();
  private revision = 0n;

  constructor(
    private readonly store: LocalRecordFile,
    private readonly clock: Clock,
  ) {}

  async join(request: JoinRequest, signal?: AbortSignal): Promise<Member> {
    const { identity, session, binary } = request;
    if (session.state !== 'held') throw new IllegalStateError('session', session.state, `cannot join on a session that is ${session.state}`);
    if (signal?.aborted) throw new AbortedError('join', { cause: signal.reason });
    const nowMs = this.clock.now();
    const facts = { binary, host: identity.host, cluster: identity.cluster, zone: identity.zone, version: request.version, nowMs };
    const member: AliveMember = {
      host: identity.host,
      cluster: identity.cluster,
      incarnation: session.incarnation,
      heartbeatAtMs: nowMs,
      aliveRevision: '0',
    };
    const record: IncarnationRecord = { incarnation: session.incarnation, host: identity.host, cluster: identity.cluster, process: request.process ?? null, joinedAtMs: nowMs };
    let service: ServiceRecord;
    try {
      service = await this.store.update((records) => {
        const holder = this.alive.get(identity.host);
        if (holder) throw new AlreadyAliveError(identity.host, holder.incarnation);
        const other = records.services.find((s) => s.cluster === identity.cluster && s.binary === binary && s.host !== identity.host);
        if (other) throw notDistributed(identity.cluster, identity.host, other.host, this.store.path);
        const found = records.clusters.find((c) => c.name === identity.cluster && c.binary === binary);
        let cluster = found ?? newClusterRecord(identity.cluster, binary, nowMs);
        const replication = request.replication && replicationOnJoin(cluster, request.replication.targetIds);
        if (replication) cluster = { ...cluster, ...replication.set(cluster), updatedAtMs: nowMs };
        const clusters = found ? records.clusters.map((c) => (c === found ? cluster : c)) : [...records.clusters, cluster];
        const previous = records.services.find((s) => s.binary === binary && s.host === identity.host);
        const joined = serviceForJoin(previous, cluster, facts);
        // Single node: ids are stored, 1, 2, … in the order hosts first joined.
        const next = joined.id === undefined ? { ...joined, id: nextServiceId(records.services) } : joined;
        // Taken inside the serialised update, so a concurrent join of the same host sees it.
        this.alive.set(identity.host, member);
        const incarnations = [...records.incarnations, record];
        return { records: { ...records, clusters, services: replaceService(records.services, next), incarnations }, result: next };
      });
    } catch (err) {
      if (this.alive.get(identity.host) === member) this.alive.delete(identity.host);
      throw err;
    }
    this.emit({ type: 'member-joined', member, revision: this.nextRevision() });
    this.emitClusters();
    return new LocalMember(this, member, service, request);
  }

  /** True while `incarnation` is the live one of `host`. */
  isAlive(host: string, incarnation: string): boolean {
    return this.alive.get(host)?.incarnation === incarnation;
  }

  /** Records a heartbeat of a live incarnation; false when it is no longer the live one. */
  async beat(owner: OwnerRef, binary: string, backend?: BackendReport): Promise<HeartbeatResult> {
    const current = this.alive.get(owner.host);
    if (current?.incarnation !== owner.incarnation) return { ok: false, reason: 'evicted' };
    const atMs = this.clock.now();
    const member = { ...current, heartbeatAtMs: atMs, ...(backend ? { backend } : {}) };
    this.alive.set(owner.host, member);
    await this.store.update((records) => withHeartbeat(records, binary, owner.host, atMs));
    this.emit({ type: 'member-heartbeat', member, revision: this.nextRevision() });
    return { ok: true, atMs };
  }

  /** Removes a live incarnation's alive entry and records its last heartbeat; `clean`: and its end (`left`). */
  async remove(owner: OwnerRef, binary: string, clean = false): Promise<void> {
    const current = this.alive.get(owner.host);
    if (current?.incarnation !== owner.incarnation) return;
    this.alive.delete(owner.host);
    this.emit({ type: 'member-left', member: current, revision: this.nextRevision() });
    const atMs = this.clock.now();
    const end: IncarnationEnd = { incarnation: owner.incarnation, host: owner.host, how: 'left', by: owner.incarnation, atMs, detail: 'left cleanly after its runs settled' };
    await this.store.update((records) => {
      const beat = withHeartbeat(records, binary, owner.host, atMs).records;
      return { records: clean && !records.ends.some((e) => e.incarnation === owner.incarnation) ? { ...beat, ends: [...beat.ends, end] } : beat, result: undefined };
    });
    if (clean) this.ended_(end);
  }

  async incarnation(incarnation: string): Promise<IncarnationView> {
    const { incarnations, ends } = this.store.read();
    const record = incarnations.find((r) => r.incarnation === incarnation);
    const end = ends.find((e) => e.incarnation === incarnation);
    return { record, end, alive: [...this.alive.values()].some((a) => a.incarnation === incarnation) };
  }

  async incarnations(): Promise<IncarnationView[]> {
    const { incarnations, ends } = this.store.read();
    const known = new Set(incarnations.map((r) => r.incarnation));
    const alive = new Set([...this.alive.values()].map((a) => a.incarnation));
    return [
      ...incarnations.map((record) => ({ record, end: ends.find((e) => e.incarnation === record.incarnation), alive: alive.has(record.incarnation) })),
      ...ends.filter((e) => !known.has(e.incarnation)).map((end) => ({ record: undefined, end, alive: alive.has(end.incarnation) })),
    ];
  }

  async recordEnd(end: IncarnationEnd, fence: Fence = NO_FENCE): Promise<RecordEndResult> {
    const result = await this.store.update((records): { records: LocalRecords; result: RecordEndResult } => {
      const existing = records.ends.find((e) => e.incarnation === end.incarnation);
      if (existing) return { records, result: { ok: true, end: existing, created: false } };
      if (end.how !== 'self' && this.isAlive(end.host, end.incarnation)) return { records, result: { ok: false, reason: 'alive' } };
      // Checked in the same tick as the write (the update is serialised): the recorder still holds.
      if (!fence.holds()) throw new FencedError('holds()', fence.description);
      return { records: { ...records, ends: [...records.ends, end] }, result: { ok: true, end, created: true } };
    });
    if (result.ok && result.created) this.ended_(result.end);
    return result;
  }

  ended(incarnation: string): Fence {
    return { guards: [], holds: () => this.store.read().ends.some((e) => e.incarnation === incarnation), description: `${incarnation} fenced` };
  }

  waitEnded(incarnation: string, signal: AbortSignal): Promise<IncarnationEnd> {
    const end = this.store.read().ends.find((e) => e.incarnation === incarnation);
    if (end) return Promise.resolve(end);
    if (signal.aborted) return Promise.reject(new AbortedError(`waiting for ${incarnation} to be fenced`, { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      const waiters = this.endWaiters.get(incarnation) ?? new Set();
      this.endWaiters.set(incarnation, waiters);
      const done = (e: IncarnationEnd): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(e);
      };
      const onAbort = (): void => {
        waiters.delete(done);
        reject(new AbortedError(`waiting for ${incarnation} to be fenced`, { cause: signal.reason }));
      };
      waiters.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async forgetIncarnation(incarnation: string): Promise<void> {
    await this.store.update((records) => ({
      records: { ...records, incarnations: records.incarnations.filter((r) => r.incarnation !== incarnation), ends: records.ends.filter((e) => e.incarnation !== incarnation) },
      result: undefined,
    }));
  }

  private ended_(end: IncarnationEnd): void {
    const waiters = this.endWaiters.get(end.incarnation);
    this.endWaiters.delete(end.incarnation);
    for (const w of waiters ?? []) w(end);
  }

  async snapshot(signal?: AbortSignal): Promise<MembershipSnapshot> {
    if (signal?.aborted) throw new AbortedError('membership snapshot', { cause: signal.reason });
    const { clusters, services } = this.store.read();
    return { clusters, services, alive: [...this.alive.values()] };
  }

  async clusterRecord(name: string, binary: string): Promise<{ readonly record: ClusterRecord | undefined; readonly unchanged: Fence }> {
    const find = (): ClusterRecord | undefined => this.store.read().clusters.find((c) => c.name === name && c.binary === binary);
    const record = find();
    // Records are replaced, never changed in place: the same object means the same record.
    return { record, unchanged: { guards: [], holds: () => find() === record, description: `cluster ${name} unchanged` } };
  }

  async setClusterDisabled(name: string, binary: string, disabled: boolean, reason: string | null): Promise<ClusterRecord | undefined> {
    const updated = await this.store.update((records) => {
      const current = records.clusters.find((c) => c.name === name && c.binary === binary);
      if (!current) return { records, result: undefined };
      const next = withClusterDisabled(current, disabled, reason, this.clock.now());
      return { records: { ...records, clusters: records.clusters.map((c) => (c === current ? next : c)) }, result: next };
    });
    this.emitClusters();
    return updated;
  }

  async updateCluster(name: string, binary: string, change: ClusterChange): Promise<ClusterUpdateResult> {
    const result = await this.store.update((records): { records: LocalRecords; result: ClusterUpdateResult } => {
      const current = records.clusters.find((c) => c.name === name && c.binary === binary);
      if (!current) return { records, result: { ok: false, reason: 'not-found' } };
      const failed = failedCondition(current, change.expect);
      if (failed) return { records, result: { ok: false, reason: 'condition', failed, record: current } };
      // Checked in the same tick as the write (the update is serialised).
      if (change.fence && !change.fence.holds()) throw new FencedError('holds()', change.fence.description);
      const next = { ...current, ...change.set(current), updatedAtMs: this.clock.now() };
      return { records: { ...records, clusters: records.clusters.map((c) => (c === current ? next : c)) }, result: { ok: true, record: next, previous: current } };
    });
    if (result.ok) this.emitClusters();
    return result;
  }

  watchCluster(name: string, binary: string, signal: AbortSignal): AsyncIterable<ClusterRecordEvent> {
    const queue = new EventQueue<ClusterRecordEvent>(signal);
    const watcher = { name, binary, queue };
    queue.push({ record: this.clusterOf(name, binary) });
    this.clusterWatchers.add(watcher);
    signal.addEventListener('abort', () => this.clusterWatchers.delete(watcher), { once: true });
    return queue;
  }

  private clusterOf(name: string, binary: string): ClusterRecord | undefined {
    return this.store.read().clusters.find((c) => c.name === name && c.binary === binary);
  }

  /** Tells every cluster watcher the record as it is now (a repeat is allowed by the contract). */
  private emitClusters(): void {
    for (const w of this.clusterWatchers) w.queue.push({ record: this.clusterOf(w.name, w.binary) });
  }

  advanceEpoch(name: string, to: number, fence: Fence = NO_FENCE): Promise<AdvanceEpochResult> {
    return this.store.update((records): { records: LocalRecords; result: AdvanceEpochResult } => {
      const actual = records.epochs[name] ?? 0;
      if (actual === to) return { records, result: { ok: true } };
      if (actual !== to - 1) return { records, result: { ok: false, actual } };
      if (!fence.holds()) throw new FencedError('holds()', fence.description);
      return { records: { ...records, epochs: { ...records.epochs, [name]: to } }, result: { ok: true } };
    });
  }

  epochFence(name: string, epoch: number): Fence {
    return { guards: [], holds: () => (this.store.read().epochs[name] ?? 0) === epoch, description: `backend epoch of ${name} == ${epoch}` };
  }

  async removeService(binary: string, host: string, signal?: AbortSignal): Promise<RemoveServiceResult> {
    if (signal?.aborted) throw new AbortedError('remove service', { cause: signal.reason });
    return this.store.update((records): { records: LocalRecords; result: RemoveServiceResult } => {
      const service = records.services.find((s) => s.binary === binary && s.host === host);
      if (!service) return { records, result: { ok: false, reason: 'not-found' } };
      const live = this.alive.get(host);
      if (live) return { records, result: { ok: false, reason: 'alive', incarnation: live.incarnation } };
      return { records: { ...records, services: records.services.filter((s) => s !== service) }, result: { ok: true, service } };
    });
  }

  ownerGone(owner: OwnerRef): Fence {
    return {
      guards: [],
      holds: () => !this.isAlive(owner.host, owner.incarnation),
      description: `owner ${owner.incarnation} gone`,
    };
  }

  watch(signal: AbortSignal): AsyncIterable<MembershipEvent> {
    const queue = new EventQueue<MembershipEvent>(signal);
    queue.push({ type: 'members-synced', members: [...this.alive.values()], revision: this.revision.toString(), reason: 'initial' });
    this.watchers.add(queue);
    signal.addEventListener('abort', () => this.watchers.delete(queue), { once: true });
    return queue;
  }

  async close(): Promise<void> {
    for (const q of this.watchers) q.end();
    this.watchers.clear();
    for (const w of this.clusterWatchers) w.queue.end();
    this.clusterWatchers.clear();
  }

  private nextRevision(): string {
    this.revision += 1n;
    return this.revision.toString();
  }

  private emit(event: MembershipEvent): void {
    for (const q of this.watchers) q.push(event);
  }
}

function nextServiceId(services: readonly ServiceRecord[]): number {
  return services.reduce((max, s) => Math.max(max, s.id ?? 0), 0) + 1;
}

function replaceService(services: readonly ServiceRecord[], next: ServiceRecord): ServiceRecord[] {
  return [...services.filter((s) => !(s.binary === next.binary && s.host === next.host)), next];
}

function withHeartbeat(records: LocalRecords, binary: string, host: string, atMs: number): { records: LocalRecords; result: undefined } {
  const services = records.services.map((s) => (s.binary === binary && s.host === host ? { ...s, heartbeatAtMs: atMs } : s));
  return { records: { ...records, services }, result: undefined };
}

function notDistributed(cluster: string, host: string, other: string, path: string): NotDistributedError {
  return new NotDistributedError(
    `cluster ${cluster} already has host ${other}, and ${host} cannot join it on the single-node backend: ` +
      `a cluster of more than one host needs etcd (set etcd.endpoints and amqp.url). ` +
      `If this data directory was only renamed to a new host, remove ${other} from ${path}.`,
  );
}

/** The single node's membership from join to leave. */
class LocalMember implements Member {
  readonly owner: OwnerRef;
  readonly cluster: string;
  private readonly controller = new AbortController();
  private leaving: Promise<void> | undefined;

  constructor(
    private readonly membership: LocalMembership,
    alive: AliveMember,
    private readonly service: ServiceRecord,
    private readonly request: JoinRequest,
  ) {
    this.owner = { host: alive.host, incarnation: alive.incarnation, aliveRevision: '0' };
    this.cluster = alive.cluster;
    const unsubscribe = request.session.onStateChange((change) => {
      if (change.state === 'lost' || change.state === 'closed') void this.leave().catch(() => undefined);
    });
    this.controller.signal.addEventListener('abort', unsubscribe, { once: true });
  }

  get joined(): boolean {
    return !this.controller.signal.aborted && this.membership.isAlive(this.owner.host, this.owner.incarnation);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  fence(): Fence {
    return { guards: [], holds: () => this.joined, description: `alive/${this.owner.host} ${this.owner.incarnation}` };
  }

  async heartbeat(): Promise<HeartbeatResult> {
    if (this.controller.signal.aborted) return { ok: false, reason: 'left' };
    const result = await this.membership.beat(this.owner, this.service.binary);
    if (!result.ok) this.controller.abort(result.reason);
    return result;
  }

  async reportBackend(report: BackendReport): Promise<HeartbeatResult> {
    if (this.controller.signal.aborted) return { ok: false, reason: 'left' };
    const result = await this.membership.beat(this.owner, this.service.binary, report);
    if (!result.ok) this.controller.abort(result.reason);
    return result;
  }

  leave(options: { readonly clean?: boolean } = {}): Promise<void> {
    this.leaving ??= (async () => {
      const wasJoined = this.joined;
      if (!this.controller.signal.aborted) this.controller.abort('left');
      await this.membership.remove(this.owner, this.request.binary, options.clean === true && wasJoined);
    })();
    return this.leaving;
  }
}
