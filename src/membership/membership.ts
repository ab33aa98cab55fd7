/**
 * The membership port: workers join a named cluster, stay alive on their session lease, and
 * leave; anyone reads the cluster and service records and watches members come and go.
 *
 * Up and down come from the lease, never from clocks: a member is up exactly while its
 * `alive/<host>` entry exists, and that entry rides on the member's session lease, so it
 * vanishes when the member leaves, revokes its lease, or stops keeping it alive for one TTL.
 */
import type { Fence } from '../fence.js';
import type { Identity, OwnerRef, ProcessIdentity } from '../identity.js';
import type { Session } from '../session/session.js';
import type { BackendReport } from './backend-report.js';
import type { IncarnationEnd, IncarnationView } from './incarnation-records.js';
import type { AliveMember, ClusterRecord, MembershipSnapshot, ServiceRecord } from './records.js';
import type { ClusterExpect, ClusterFields, FailedClusterCondition } from './replication-fields.js';

/** A conditional update of a cluster record: what must hold, and what to set (from the record as it is). */
export interface ClusterChange {
  readonly expect: ClusterExpect;
  readonly set: (current: ClusterRecord) => Partial<ClusterFields>;
  /** The writer's entitlement (a worker's alive fence); absent: API-side, none. */
  readonly fence?: Fence;
}

/** The outcome of {@link Membership.updateCluster}; a refusal is a value naming its condition. */
export type ClusterUpdateResult =
  | { readonly ok: true; readonly record: ClusterRecord; readonly previous: ClusterRecord }
  | { readonly ok: false; readonly reason: 'not-found' }
  | { readonly ok: false; readonly reason: 'condition'; readonly failed: FailedClusterCondition; readonly record: ClusterRecord };

/** One value of {@link Membership.watchCluster}: the record (undefined while there is none). */
export interface ClusterRecordEvent {
  readonly record: ClusterRecord | undefined;
}

/** The outcome of {@link Membership.advanceEpoch}: `actual` is the epoch found when it was neither `to − 1` nor `to`. */
export type AdvanceEpochResult = { readonly ok: true } | { readonly ok: false; readonly actual: number };

/** The outcome of recording how an incarnation ended; an incarnation still alive is a value. */
export type RecordEndResult =
  /** `end` is on record now; `created: false` when an earlier end record was there first (it is returned). */
  | { readonly ok: true; readonly end: IncarnationEnd; readonly created: boolean }
  | { readonly ok: false; readonly reason: 'alive' };

/** The outcome of removing a service record; a refusal is a value. */
export type RemoveServiceResult =
  | { readonly ok: true; readonly service: ServiceRecord }
  | { readonly ok: false; readonly reason: 'not-found' }
  /** The host is alive (under `incarnation`): its record stays. */
  | { readonly ok: false; readonly reason: 'alive'; readonly incarnation: string };

/** What a worker joins with. */
export interface JoinRequest {
  readonly identity: Identity;
  /** The service binary; Cinder's `cinder-volume` (`VOLUME_BINARY`). */
  readonly binary: string;
  /** hearth version, recorded in the service record. */
  readonly version: string;
  /** The session whose lease the alive entry rides on; its incarnation becomes the member's. */
  readonly session: Session;
  /** The process that runs this incarnation, recorded for fencing; absent: not recorded. */
  readonly process?: ProcessIdentity;
  /**
   * The replication targets of this member's driver, when it replicates: the join records them
   * in the cluster record and turns a `not-capable` cluster `enabled` (docs/membership.md).
   */
  readonly replication?: { readonly targetIds: readonly string[] };
}

/** The outcome of one heartbeat. Eviction (the alive entry is no longer ours) is a value. */
export type HeartbeatResult = { readonly ok: true; readonly atMs: number } | { readonly ok: false; readonly reason: 'evicted' | 'left' };

/** One incarnation's membership, from join to leave. */
export interface Member {
  /** Who this incarnation is; ops it owns record this. */
  readonly owner: OwnerRef;
  readonly cluster: string;
  /** False once left, evicted, or its session is lost or closed. */
  readonly joined: boolean;
  /** Aborts when `joined` becomes false. */
  readonly signal: AbortSignal;
  /**
   * The alive fence: a write made with it commits only while this incarnation's alive entry
   * is still the one it created (`expect: 'equal'` on its create revision).
   */
  fence(): Fence;
  /**
   * Refreshes the heartbeat time in the alive entry and the service record.
   *
   * Failure semantics: throws a retryable `BackendUnavailableError` when etcd cannot be reached
   * (the lease, not the heartbeat, decides liveness, so a missed heartbeat changes nothing);
   * returns `{ ok: false, reason: 'evicted' }` when the alive entry is gone or belongs to
   * another incarnation — this member must rejoin as a new incarnation.
   */
  heartbeat(): Promise<HeartbeatResult>;
  /**
   * Puts `report` in the alive entry now (one heartbeat), and in every later heartbeat: what
   * the API shows as this member's `backend_state` and pool. Same failure semantics as
   * {@link heartbeat}; a report that could not be written goes out with the next heartbeat.
   */
  reportBackend(report: BackendReport): Promise<HeartbeatResult>;
  /**
   * Deletes the alive entry (peers see the member leave at once) and records a last
   * heartbeat. The session is not closed here: its owner revokes it. Idempotent.
   *
   * `clean`: this incarnation's runs have all settled, so it needs no fence: the same write
   * records its end (`left`), and its locks and orphans need wait for nothing.
   *
   * Failure semantics: when etcd cannot be reached the entry stays until the lease expires
   * (at most one TTL) or is revoked, and no end is recorded (a fence will be needed); the error
   * is thrown after the member is marked left.
   */
  leave(options?: { readonly clean?: boolean }): Promise<void>;
}

/** Membership changes, from a watch that resumes from its revision and re-lists after compaction. */
export type MembershipEvent =
  | {
      readonly type: 'members-synced';
      /** Every member alive at `revision`. */
      readonly members: readonly AliveMember[];
      readonly revision: string;
      /** `initial`: the first list; `compacted`/`watch-error`: a re-list after the watch broke. */
      readonly reason: 'initial' | 'compacted' | 'watch-error';
    }
  | { readonly type: 'member-joined'; readonly member: AliveMember; readonly revision: string }
  | { readonly type: 'member-heartbeat'; readonly member: AliveMember; readonly revision: string }
  | { readonly type: 'member-left'; readonly member: AliveMember; readonly revision: string };

/** See the module doc. */
export interface Membership {
  /** True for etcd (cluster-wide); false for the single-node adapter. */
  readonly distributed: boolean;
  /**
   * Joins: writes the durable service record, creates the cluster record if it is missing
   * (exactly once however many members start at once) and creates `alive/<host>` on the
   * session's lease.
   *
   * Failure semantics: throws `AlreadyAliveError` (`ALREADY_ALIVE`) when the host is alive
   * under another incarnation (wait for its lease to expire, then join again); a retryable
   * `BackendUnavailableError` when etcd cannot be reached (nothing or only the idempotent
   * cluster/service records were written; the alive entry is written atomically or not at
   * all); `NOT_DISTRIBUTED` on the single-node adapter when its records name another host of
   * the same cluster.
   */
  join(request: JoinRequest, signal?: AbortSignal): Promise<Member>;
  /**
   * Reads every cluster record, service record and alive entry at one revision.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached.
   */
  snapshot(signal?: AbortSignal): Promise<MembershipSnapshot>;
  /**
   * Reads one cluster record (undefined when no cluster has that name and binary), with a fence
   * that holds while the record stays as read — etcd: its key's mod revision is unchanged — for a
   * write that depends on it (a volume create admitted by it).
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached.
   */
  clusterRecord(name: string, binary: string): Promise<{ readonly record: ClusterRecord | undefined; readonly unchanged: Fence }>;
  /**
   * Enables or disables a cluster (scheduling only: its members keep running). Returns the
   * updated record, or undefined when no cluster has that name and binary.
   *
   * Failure semantics: a compare-and-swap on the record, retried on a lost race; a retryable
   * `BackendUnavailableError` (outcome unknown: re-read) when etcd cannot be reached.
   */
  setClusterDisabled(name: string, binary: string, disabled: boolean, reason: string | null): Promise<ClusterRecord | undefined>;
  /**
   * One conditional update of a cluster record (replication status, freeze, the failover in
   * flight): when every condition of `change.expect` holds on the record as it is, sets what
   * `change.set` returns (and `updatedAtMs`), in one compare-and-swap. A condition that does not
   * hold is a value naming it; so is a cluster that does not exist.
   *
   * Failure semantics: retried on a lost race (bounded; `CONFLICT` after that); `FencedError`
   * when `change.fence` fails (nothing written); a retryable `BackendUnavailableError` when
   * etcd cannot be reached (outcome unknown: read again).
   */
  updateCluster(name: string, binary: string, change: ClusterChange): Promise<ClusterUpdateResult>;
  /**
   * Raises the backend epoch of cluster `name` to `to` (from `to − 1`), the fence every op of the
   * older epoch compares in its claim and final write. Idempotent: already at `to` is success;
   * any other epoch is a value. On etcd the epoch is the version of the key
   * `cluster-epochs/<name>` (one put per raise).
   *
   * Failure semantics: `FencedError` when `fence` fails; a retryable `BackendUnavailableError`
   * when etcd cannot be reached (read again: it may have landed).
   */
  advanceEpoch(name: string, to: number, fence?: Fence): Promise<AdvanceEpochResult>;
  /** A write guard that holds while cluster `name`'s backend epoch is still `epoch` (compared in the write's own transaction on etcd). */
  epochFence(name: string, epoch: number): Fence;
  /**
   * The record of cluster `name` (undefined while there is none of that binary) as it is now,
   * then after every change, until `signal` aborts: what a worker caches (frozen, the backend and
   * epoch it serves, a failover to run) instead of reading it per op.
   *
   * Failure semantics: survives etcd restarts and disconnections (a fresh read, then a new
   * watch); a value may repeat. Nothing is polled.
   */
  watchCluster(name: string, binary: string, signal: AbortSignal): AsyncIterable<ClusterRecordEvent>;
  /**
   * Removes the durable service record of a host that is down (Cinder's `cinder-manage service
   * remove`): it stops counting as an expected member. Refuses, as a value, while the host is
   * alive — in the same write on etcd, so a host that comes back meanwhile keeps its record. A
   * host that joins later writes a fresh record. The cluster record stays.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached (the
   * record may or may not be gone: read again); `CONFLICT` when the record kept changing.
   */
  removeService(binary: string, host: string, signal?: AbortSignal): Promise<RemoveServiceResult>;
  /**
   * The dead-owner proof: a write made with it commits only if `owner`'s incarnation is no
   * longer alive (`expect: 'notEqual'` on the create revision of its alive entry), which
   * holds even if the host has restarted since.
   */
  ownerGone(owner: OwnerRef): Fence;
  /**
   * Membership events until `signal` aborts: first `members-synced` (reason `initial`), then
   * joins, heartbeats and leaves in revision order.
   *
   * Failure semantics: survives etcd restarts and disconnections (the watch resumes from its
   * last revision); when that revision was compacted away it re-lists, emits the difference
   * as joins and leaves and then `members-synced` (reason `compacted`). Nothing is polled.
   */
  watch(signal: AbortSignal): AsyncIterable<MembershipEvent>;
  /**
   * The durable record of `incarnation` (which process ran it, written when it joined) and
   * how it ended for good, if it did.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when etcd cannot be reached.
   */
  incarnation(incarnation: string): Promise<IncarnationView>;
  /** Every incarnation record and end record kept (views; collecting old ones). */
  incarnations(): Promise<IncarnationView[]>;
  /**
   * Records how `end.incarnation` ended for good (fenced), once: when an end is on record
   * already, that one is returned. Unless `end.how` is `self`, it commits only if the
   * incarnation is not alive (`{ ok: false, reason: 'alive' }` otherwise). `fence` guards the
   * write (the recorder is a live member).
   *
   * Failure semantics: `FencedError` when `fence` fails (nothing written); a retryable
   * `BackendUnavailableError` when etcd cannot be reached (read again: it may have landed).
   */
  recordEnd(end: IncarnationEnd, fence?: Fence): Promise<RecordEndResult>;
  /** A write guard that holds once `incarnation` has an end record: the fence gate of takeovers. */
  ended(incarnation: string): Fence;
  /**
   * Resolves with the end record of `incarnation` once there is one. Watches; never polls.
   *
   * @throws AbortedError on `signal`; a retryable `BackendUnavailableError` when etcd is away.
   */
  waitEnded(incarnation: string, signal: AbortSignal): Promise<IncarnationEnd>;
  /** Drops the records of an incarnation nothing refers to any more. */
  forgetIncarnation(incarnation: string): Promise<void>;
  /** Stops every watch. Idempotent; members must be left by their owners. */
  close(): Promise<void>;
}
