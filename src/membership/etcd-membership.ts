import type { Etcd3, IKeyValue } from 'etcd3';
import { AbortedError, AlreadyAliveError, CoordinatorError, IllegalStateError } from '../errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import { fromEtcdError } from '../etcd/errors.js';
import type { Fence } from '../fence.js';
import type { OwnerRef } from '../identity.js';
import type { Clock } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { EtcdClusterRecords } from './etcd-cluster-records.js';
import { watchClusterRecord } from './etcd-cluster-watch.js';
import { EtcdIncarnations } from './etcd-incarnations.js';
import { EtcdMember, rangeKv } from './etcd-member.js';
import { watchAlive } from './etcd-watch.js';
import { encodeIncarnationRecord, type IncarnationEnd, type IncarnationRecord, type IncarnationView } from './incarnation-records.js';
import type {
  AdvanceEpochResult,
  ClusterChange,
  ClusterRecordEvent,
  ClusterUpdateResult,
  JoinRequest,
  Member,
  Membership,
  MembershipEvent,
  RecordEndResult,
  RemoveServiceResult,
} from './membership.js';
import { replicationOnJoin } from './replication.js';
import {
  type AliveMember,
  type AliveRecord,
  type ClusterRecord,
  decodeAlive,
  decodeCluster,
  decodeService,
  encodeRecord,
  type MembershipSnapshot,
  newClusterRecord,
  type ServiceRecord,
  serviceForJoin,
  withClusterDisabled,
} from './records.js';

/** Bound on compare-and-swap retries when other writers keep winning. */
const MAX_RACES = 5;

/** What {@link EtcdMembership} needs. */
export interface EtcdMembershipOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Waits before a watch re-lists after etcd could not be reached (`retry.*`). */
  readonly retry?: Backoff;
}

function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(what, { cause: signal.reason });
}

/**
 * Membership on etcd. Cluster records `clusters/<cluster>` and service records
 * `services/<binary>/<host>` have no lease; `alive/<host>` rides on the member's session
 * lease. See {@link Membership} for the contract and failure semantics.
 */
export class EtcdMembership implements Membership {
  readonly distributed = true;
  private readonly watches = new AbortController();
  private readonly records: EtcdIncarnations;
  private readonly clusters: EtcdClusterRecords;

  constructor(private readonly options: EtcdMembershipOptions) {
    this.records = new EtcdIncarnations(options);
    this.clusters = new EtcdClusterRecords(options);
  }

  async join(request: JoinRequest, signal?: AbortSignal): Promise<Member> {
    const { identity, session, binary } = request;
    if (session.state !== 'held') throw new IllegalStateError('session', session.state, `cannot join on a session that is ${session.state}`);
    checkAborted(signal, 'join');
    const nowMs = this.options.clock.now();
    let cluster = await this.ensureCluster(identity.cluster, binary, nowMs);
    const replication = request.replication && replicationOnJoin(cluster, request.replication.targetIds);
    if (replication) {
      const updated = await this.clusters.update(identity.cluster, binary, replication);
      if (updated.ok) cluster = updated.record;
    }
    const alive: AliveRecord = { host: identity.host, cluster: identity.cluster, incarnation: session.incarnation, heartbeatAtMs: nowMs };
    const facts = { binary, host: identity.host, cluster: identity.cluster, zone: identity.zone, version: request.version, nowMs };
    const record: IncarnationRecord = { incarnation: session.incarnation, host: identity.host, cluster: identity.cluster, process: request.process ?? null, joinedAtMs: nowMs };
    for (let attempt = 0; attempt < MAX_RACES; attempt++) {
      checkAborted(signal, 'join');
      const { client, keys } = this.options;
      const serviceKey = keys.service(binary, identity.host);
      const aliveKey = keys.alive(identity.host);
      try {
        const existing = await client.get(serviceKey).exec();
        const kv = existing.kvs[0];
        const service = serviceForJoin(kv ? decodeService(kv.value.toString()) : undefined, cluster, facts);
        const tx = await client
          .if(aliveKey, 'Create', '==', 0)
          .and(serviceKey, 'Mod', '==', kv?.mod_revision ?? '0')
          .then(
            client.put(serviceKey).value(encodeRecord(service)),
            client.put(aliveKey).value(encodeRecord(alive)).lease(session.leaseId),
            // Beside the alive entry, without a lease: who ran this incarnation, for its fence.
            client.put(keys.incarnation(session.incarnation)).value(encodeIncarnationRecord(record)),
          )
          .else(client.get(aliveKey))
          .commit();
        if (tx.succeeded) return this.member(request, alive, tx.header.revision, service, tx.header.revision);
        const holder = rangeKv(tx, 0);
        if (holder) return this.joinedBefore(request, alive, holder, service);
      } catch (err) {
        throw fromEtcdError(err, `join of ${identity.host}`);
      }
    }
    throw new CoordinatorError('CONFLICT', `join of ${identity.host}: its service record kept changing`, { retryable: true });
  }

  /** The alive key exists: ours from an earlier attempt whose answer was lost, or another incarnation's. */
  private joinedBefore(request: JoinRequest, alive: AliveRecord, holder: IKeyValue, service: ServiceRecord): Member {
    let incarnation = 'unknown';
    try {
      incarnation = decodeAlive(holder.value.toString()).incarnation;
    } catch {
      // A malformed alive entry is still someone else's live key.
    }
    if (incarnation === request.session.incarnation && holder.lease === request.session.leaseId) {
      return this.member(request, alive, holder.create_revision, service, '0');
    }
    throw new AlreadyAliveError(request.identity.host, incarnation);
  }

  private member(request: JoinRequest, alive: AliveRecord, aliveRevision: string, service: ServiceRecord, serviceRevision: string): Member {
    const { client, keys, clock } = this.options;
    return new EtcdMember({ client, keys, clock, session: request.session, alive, aliveRevision, service, serviceRevision });
  }

  /** Creates `clusters/<name>` unless it exists, in one transaction, and returns the record. */
  private async ensureCluster(name: string, binary: string, nowMs: number): Promise<ClusterRecord> {
    const { client, keys } = this.options;
    const key = keys.cluster(name);
    const fresh = newClusterRecord(name, binary, nowMs);
    try {
      const tx = await client.if(key, 'Create', '==', 0).then(client.put(key).value(encodeRecord(fresh))).else(client.get(key)).commit();
      const kv = rangeKv(tx, 0);
      return tx.succeeded || kv === undefined ? fresh : decodeCluster(kv.value.toString());
    } catch (err) {
      throw fromEtcdError(err, `create cluster ${name}`);
    }
  }

  async snapshot(signal?: AbortSignal): Promise<MembershipSnapshot> {
    checkAborted(signal, 'membership snapshot');
    const { client, keys } = this.options;
    try {
      const alive = await client.getAll().prefix(keys.aliveAll()).exec();
      const revision = alive.header.revision;
      const [clusters, services] = await Promise.all([
        client.getAll().prefix(keys.clusters()).revision(revision).exec(),
        client.getAll().prefix(keys.services()).revision(revision).exec(),
      ]);
      return {
        clusters: this.decodeAll(clusters.kvs, decodeCluster),
        // A service's id is its key's create revision: stable while the record exists.
        services: this.decodeAll(services.kvs, (text, kv): ServiceRecord => ({ ...decodeService(text), id: Number(kv.create_revision) })),
        alive: this.decodeAll(alive.kvs, (text, kv): AliveMember => ({ ...decodeAlive(text), aliveRevision: kv.create_revision })),
      };
    } catch (err) {
      throw fromEtcdError(err, 'read membership');
    }
  }

  async clusterRecord(name: string, binary: string): Promise<{ readonly record: ClusterRecord | undefined; readonly unchanged: Fence }> {
    const key = this.options.keys.cluster(name);
    try {
      const kv = (await this.options.client.kv.range({ key: Buffer.from(key) })).kvs[0];
      let record: ClusterRecord | undefined;
      try {
        record = kv === undefined ? undefined : decodeCluster(kv.value.toString());
      } catch (err) {
        this.options.logger.warn({ err, key }, 'ignoring a malformed membership record');
      }
      const modRevision = kv?.mod_revision ?? '0';
      return {
        record: record?.binary === binary ? record : undefined,
        unchanged: { guards: [{ key, modRevision, expect: 'equal' }], holds: () => true, description: `cluster ${name} unchanged since revision ${modRevision}` },
      };
    } catch (err) {
      throw fromEtcdError(err, `read cluster ${name}`);
    }
  }

  /** Decodes every value, skipping (and logging) malformed ones. */
  private decodeAll<T>(kvs: readonly IKeyValue[], decode: (text: string, kv: IKeyValue) => T): T[] {
    const out: T[] = [];
    for (const kv of kvs) {
      try {
        out.push(decode(kv.value.toString(), kv));
      } catch (err) {
        this.options.logger.warn({ err, key: kv.key.toString() }, 'ignoring a malformed membership record');
      }
    }
    return out;
  }

  async setClusterDisabled(name: string, binary: string, disabled: boolean, reason: string | null): Promise<ClusterRecord | undefined> {
    const { client, keys, clock } = this.options;
    const key = keys.cluster(name);
    try {
      for (let attempt = 0; attempt < MAX_RACES; attempt++) {
        const kv = (await client.get(key).exec()).kvs[0];
        if (!kv) return undefined;
        const current = decodeCluster(kv.value.toString());
        if (current.binary !== binary) return undefined;
        const next = withClusterDisabled(current, disabled, reason, clock.now());
        const tx = await client.if(key, 'Mod', '==', kv.mod_revision).then(client.put(key).value(encodeRecord(next))).commit();
        if (tx.succeeded) return next;
      }
    } catch (err) {
      throw fromEtcdError(err, `update cluster ${name}`);
    }
    throw new CoordinatorError('CONFLICT', `cluster ${name} kept changing; try again`, { retryable: true });
  }

  updateCluster(name: string, binary: string, change: ClusterChange): Promise<ClusterUpdateResult> {
    return this.clusters.update(name, binary, change);
  }

  advanceEpoch(name: string, to: number, fence?: Fence): Promise<AdvanceEpochResult> {
    return this.clusters.advanceEpoch(name, to, fence);
  }

  epochFence(name: string, epoch: number): Fence {
    return this.clusters.epochFence(name, epoch);
  }

  watchCluster(name: string, binary: string, signal: AbortSignal): AsyncIterable<ClusterRecordEvent> {
    const { client, keys, clock, logger } = this.options;
    return watchClusterRecord({ client, keys, clock, logger, retry: this.options.retry ?? DEFAULT_ETCD_RETRY }, name, binary, AbortSignal.any([signal, this.watches.signal]));
  }

  async removeService(binary: string, host: string, signal?: AbortSignal): Promise<RemoveServiceResult> {
    checkAborted(signal, 'remove service');
    const { client, keys } = this.options;
    const serviceKey = keys.service(binary, host);
    const aliveKey = keys.alive(host);
    try {
      for (let attempt = 0; attempt < MAX_RACES; attempt++) {
        const [service, alive] = await Promise.all([client.get(serviceKey).exec(), client.get(aliveKey).exec()]);
        const kv = service.kvs[0];
        if (!kv) return { ok: false, reason: 'not-found' };
        const live = alive.kvs[0];
        if (live) return { ok: false, reason: 'alive', incarnation: decodeAlive(live.value.toString()).incarnation };
        // Unchanged since read, and still nobody alive under that host: then delete.
        const tx = await client.if(serviceKey, 'Mod', '==', kv.mod_revision).and(aliveKey, 'Create', '==', 0).then(client.delete().key(serviceKey)).commit();
        if (tx.succeeded) return { ok: true, service: { ...decodeService(kv.value.toString()), id: Number(kv.create_revision) } };
      }
    } catch (err) {
      throw fromEtcdError(err, `remove service ${binary} ${host}`);
    }
    throw new CoordinatorError('CONFLICT', `service ${binary} ${host} kept changing; try again`, { retryable: true });
  }

  ownerGone(owner: OwnerRef): Fence {
    return {
      guards: [{ key: this.options.keys.alive(owner.host), createRevision: owner.aliveRevision, expect: 'notEqual' }],
      holds: () => true,
      description: `owner ${owner.incarnation} gone (alive/${owner.host} rev != ${owner.aliveRevision})`,
    };
  }

  watch(signal: AbortSignal): AsyncIterable<MembershipEvent> {
    const combined = AbortSignal.any([signal, this.watches.signal]);
    const { client, keys, clock, logger } = this.options;
    return watchAlive({ client, keys, clock, logger, retry: this.options.retry ?? DEFAULT_ETCD_RETRY }, combined);
  }

  incarnation(incarnation: string): Promise<IncarnationView> {
    return this.records.get(incarnation);
  }

  incarnations(): Promise<IncarnationView[]> {
    return this.records.list();
  }

  recordEnd(end: IncarnationEnd, fence?: Fence): Promise<RecordEndResult> {
    return this.records.recordEnd(end, fence);
  }

  ended(incarnation: string): Fence {
    return this.records.ended(incarnation);
  }

  waitEnded(incarnation: string, signal: AbortSignal): Promise<IncarnationEnd> {
    return this.records.waitEnded(incarnation, AbortSignal.any([signal, this.watches.signal]));
  }

  forgetIncarnation(incarnation: string): Promise<void> {
    return this.records.forget(incarnation);
  }

  async close(): Promise<void> {
    this.watches.abort();
  }
}
