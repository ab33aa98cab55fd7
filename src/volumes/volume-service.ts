import { previewText } from '../preview.js';
import { randomUUID } from 'node:crypto';
import { FencedError, InvalidInputError, NotFoundError } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { type Expect, not } from '../state/expect.js';
import type { OpRecord, ResourceRef, SnapshotRecord, VolumeRecord } from '../state/records.js';
import { isKnownStatus, isTransitional, type OpKind, resettableStatuses, sourcesOf } from '../state/state-machine.js';
import { type ListQuery, type Page, type StateStore, type StoredOp, type TransitionResult, valueOf } from '../state/state-store.js';
import type { ClusterAdmission } from './cluster-admission.js';
import { type OperationGate, UnavailableDuringUpgradeError } from './operation-gate.js';
import { ClusterDisabledError, ClusterFrozenError, ConditionFailedError } from './errors.js';
import type { Fence } from '../fence.js';
import type { JobPublisher } from './job-publisher.js';
import type { PublishStamps } from './publish-stamps.js';
import type { AbortRequest } from '../routing/abort-notice.js';
import { copyActionOf, copyKindOf, requestedSource, sizeFromSource, type SourceRequest, sourceExpect } from './volume-sources.js';

/** Who asks, as the API authenticated them. */
export interface RequestContext {
  readonly projectId: string;
  readonly userId: string | null;
  /** Admins see and change every project's resources (noauth makes everyone admin, as Cinder). */
  readonly isAdmin: boolean;
}

/** A new volume as a user describes it. */
export interface CreateVolumeInput extends SourceRequest {
  /** GiB; optional with a source (`snapshotId`, `sourceVolid`), whose size it must reach. */
  readonly size?: number | null;
  readonly name?: string | null;
  readonly description?: string | null;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly availabilityZone?: string | null;
  readonly volumeType?: string | null;
}

/** A new snapshot as a user describes it. */
export interface CreateSnapshotInput {
  readonly volumeId: string;
  readonly name?: string | null;
  readonly description?: string | null;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Snapshot an `in-use` volume too (Cinder's `force`, implied from 3.66). */
  readonly allowInUse?: boolean;
}

/** What `os-reset_status` may set; at least one field. */
export interface ResetStatusInput {
  readonly status?: string;
  readonly attachStatus?: 'attached' | 'detached';
  readonly migrationStatus?: string | null;
}

/** Options of {@link VolumeService}. */
export interface VolumeServiceOptions {
  readonly store: StateStore;
  readonly publisher: JobPublisher;
  /** Stamps `publishedAt` on confirmed ops, in batches. */
  readonly stamps: Pick<PublishStamps, 'add'>;
  readonly admission: ClusterAdmission;
  /** Operations only a newer release runs wait until every live worker runs it (default: all accepted). */
  readonly gate?: OperationGate;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The cluster new volumes go to (`<name>@<backend>`). */
  readonly cluster: string;
  readonly availabilityZone: string;
  /**
   * Asks the owner of an op a force-delete replaced to abort its run (a notice on the cluster's
   * fanout; best effort — the worker of the force-delete asks again). Absent: nobody is asked.
   */
  readonly abortRun?: (request: AbortRequest) => Promise<void>;
  /**
   * A volume's type by name or id, and whether its volumes are multiattach (volume-type-service.ts).
   * Absent: only the default type exists.
   */
  readonly resolveType?: (nameOrId: string | null) => Promise<{ readonly name: string; readonly id: string; readonly multiattach: boolean }>;
}

/** Cinder's only volume type in hearth. */
export const DEFAULT_VOLUME_TYPE = '__DEFAULT__';

/**
 * The volume and snapshot application service behind the REST API (and the CLI through it).
 * Every change is one conditional transition that also records the op; the op is then handed to
 * the {@link JobPublisher}. Executing it is the worker's job.
 *
 * Failure semantics: a refused condition throws {@link ConditionFailedError} naming it, a
 * missing resource {@link NotFoundError}; nothing was written. Backend errors from the store
 * (`BACKEND_UNAVAILABLE`, `OUTCOME_UNKNOWN`) pass through: after `OUTCOME_UNKNOWN` the change may
 * have landed, so a client should read the resource before retrying. A failed publish is logged
 * and leaves the op queued for the republish sweep; the request still succeeds.
 */
export class VolumeService {
  constructor(private readonly o: VolumeServiceOptions) {}

  async createVolume(ctx: RequestContext, input: CreateVolumeInput): Promise<VolumeRecord> {
    const zone = input.availabilityZone ?? this.o.availabilityZone;
    if (zone !== this.o.availabilityZone) throw new InvalidInputError(`Availability zone '${previewText(zone)}' is invalid (this cluster serves '${this.o.availabilityZone}').`);
    const requested = input.volumeType ?? DEFAULT_VOLUME_TYPE;
    let resolved: { readonly name: string; readonly id?: string; readonly multiattach: boolean } = { name: DEFAULT_VOLUME_TYPE, multiattach: false };
    if (this.o.resolveType) resolved = await this.o.resolveType(input.volumeType ?? null);
    else if (requested !== DEFAULT_VOLUME_TYPE) throw new NotFoundError('volume type', requested, `Volume type with name ${previewText(requested)} could not be found.`);
    const from = await this.sourceOf(ctx, input);
    const size = from?.size ?? input.size;
    if (size === null || size === undefined) throw new InvalidInputError("Invalid input for field/attribute volume. 'size' is a required property.");
    const cluster = from?.cluster ?? this.o.cluster;
    const record = {
      name: input.name ?? null,
      description: input.description ?? null,
      size,
      status: 'creating' as const,
      previous_status: null,
      project_id: ctx.projectId,
      user_id: ctx.userId,
      cluster,
      host: null,
      attach_status: 'detached' as const,
      availability_zone: zone,
      volume_type: resolved.name,
      ...(resolved.id === undefined ? {} : { volume_type_id: resolved.id }),
      migration_status: null,
      bootable: false,
      // Cinder takes it from the type (microversion 3.50), never from the request.
      multiattach: resolved.multiattach,
      metadata: { ...(input.metadata ?? {}) },
      snapshot_id: from?.ref.type === 'snapshot' ? from.ref.id : null,
      source_volid: from?.ref.type === 'volume' ? from.ref.id : null,
      // The hold: the source's delete and extend count it until the copy leaves `creating`.
      source_held: from !== undefined,
    };
    const id = randomUUID();
    const kind = from ? copyKindOf(from.ref) : 'create_volume';
    const op = { kind, params: { size, ...(from ? { sourceType: from.ref.type, sourceId: from.ref.id } : {}) } };
    this.admit(kind, cluster);
    let admission = await this.o.admission.admitsNewVolumes(cluster);
    let result: TransitionResult<VolumeRecord>;
    for (let attempt = 1; ; attempt++) {
      if (!admission.accepts) throw admission.frozen ? new ClusterFrozenError(cluster, admission.reason) : new ClusterDisabledError(cluster, admission.reason);
      // The admission rides in the create's write: its fence fails if the cluster record changed since.
      const fence = admission.fence;
      try {
        result = await this.o.store.create('volume', { record: { id, ...record }, op, ...(from ? { parent: from.parent } : {}), ...(fence ? { fence } : {}) });
        break;
      } catch (err) {
        if (!(err instanceof FencedError) || fence === undefined || attempt > 1) throw err;
        admission = await this.o.admission.admitsNewVolumes(cluster, { fresh: true });
      }
    }
    if (from && !result.ok && (result.failed.field === `${from.ref.type}.exists` || result.failed.field === `${from.ref.type}.project_id`)) throw this.missing(from.ref);
    return (await this.recorded('volume', result, from ? copyActionOf(from.ref) : 'create')).record;
  }

  /**
   * The source a create names, read as the caller sees it (another project's looks missing), with
   * what the create's write must check on it; undefined for a blank volume.
   */
  private async sourceOf(ctx: RequestContext, input: CreateVolumeInput) {
    const ref = requestedSource(input);
    if (!ref) return undefined;
    const source = ref.type === 'volume' ? await this.getVolume(ctx, ref.id) : await this.getSnapshot(ctx, ref.id);
    return {
      ref,
      size: sizeFromSource(input.size, source, ref.type),
      cluster: source.cluster,
      // Compared, not rewritten: copies of one source do not conflict with each other (docs/state.md "Sources").
      parent: { ref, expect: sourceExpect(source, ref.type, this.ownership(ctx)), touch: false },
    };
  }

  private missing(ref: ResourceRef): NotFoundError {
    return ref.type === 'volume'
      ? new NotFoundError('volume', ref.id, `Volume ${previewText(ref.id)} could not be found.`)
      : new NotFoundError('snapshot', ref.id, `Snapshot ${previewText(ref.id)} could not be found.`);
  }

  async getVolume(ctx: RequestContext, id: string): Promise<VolumeRecord> {
    const volume = await this.o.store.get({ type: 'volume', id });
    if (!volume || !this.visible(ctx, volume)) throw new NotFoundError('volume', id, `Volume ${previewText(id)} could not be found.`);
    return volume;
  }

  listVolumes(ctx: RequestContext, query: ListQuery, allTenants: boolean): Promise<Page<VolumeRecord>> {
    return this.o.store.list('volume', this.scoped(ctx, query, allTenants));
  }

  /**
   * Cinder's delete conditions: a deletable status, not attached, not migrating, no snapshots —
   * and hearth's: no volume being created from it (`holds`, docs/state.md "Sources").
   */
  async deleteVolume(ctx: RequestContext, id: string): Promise<void> {
    const expect: Expect = {
      ...this.ownership(ctx),
      status: sourcesOf('volume', 'deleting', 'api'),
      attach_status: not('attached'),
      migration_status: [null, 'deleting', 'error', 'success'],
      snapshots: 0,
      holds: 0,
    };
    this.admit('delete_volume');
    const result = await this.unfrozen(this.o.cluster, (fence) =>
      this.o.store.transition({ type: 'volume', id }, { expect, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api', ...fenced(fence) }),
    );
    await this.recorded('volume', result, 'delete', id);
  }

  /**
   * Cinder's `os-force_delete` of a volume (admins only): deletes it in any status but those
   * Cinder refuses — attached, migrating, with snapshots. One write replaces whatever op the
   * volume had with a force-delete op (see {@link forceDelete}).
   */
  async forceDeleteVolume(ctx: RequestContext, id: string): Promise<void> {
    const volume = await this.getVolume(ctx, id);
    // The write below expects the status read here, which every attachment change moves: no attachment slips in between.
    if ((volume.attachments ?? []).length > 0) {
      throw new InvalidInputError(`Invalid volume: Volume ${volume.id} has attachments; detach them (attachment-delete, os-force_detach) before deleting it.`);
    }
    await this.forceDelete(ctx, { type: 'volume', id }, volume.status, {
      attach_status: not('attached'),
      migration_status: [null, 'deleting', 'error', 'success'],
      snapshots: 0,
      // Not even an admin deletes a source under a running copy.
      holds: 0,
    });
  }

  /** Cinder's `os-force_delete` of a snapshot (admins only): deletes it in any status but while a volume is created from it. */
  async forceDeleteSnapshot(ctx: RequestContext, id: string): Promise<void> {
    const snapshot = await this.getSnapshot(ctx, id);
    await this.forceDelete(ctx, { type: 'snapshot', id }, snapshot.status, { holds: 0 });
  }

  /**
   * One write: the resource (still in the status read) goes to `deleting`, and its op — if it
   * had one, pinned by its opId — is replaced by a delete op marked `force`, recording the op
   * it replaced. The replaced op's owner can write nothing more (its writes expect its opId),
   * and is asked to abort its run; the new op is published, and its worker waits, bounded, for
   * the replaced run to stop before it deletes (`worker/force-delete.ts`, docs/state.md).
   */
  private async forceDelete(ctx: RequestContext, ref: ResourceRef, status: string, conditions: Expect): Promise<void> {
    const op = await this.o.store.getOp(ref);
    const replaced = op && { opId: op.opId, kind: op.kind, owner: op.owner?.incarnation ?? null, ownerHost: op.owner?.host ?? null };
    const kind = ref.type === 'volume' ? 'delete_volume' : 'delete_snapshot';
    const result = await this.unfrozen(this.o.cluster, (fence) =>
      this.o.store.transition(ref as { type: 'volume'; id: string }, {
        expect: { ...this.ownership(ctx), status, ...conditions },
        ...(op ? { expectOp: { opId: op.opId } } : {}),
        set: { status: 'deleting' },
        op: { replace: { kind, params: { force: true, ...(replaced ? { replaced } : {}) } } },
        by: 'api',
        ...fenced(fence),
      }),
    );
    await this.recorded(ref.type, result, 'force-delete', ref.id);
    if (!op?.owner || !this.o.abortRun) return;
    this.o.logger.info({ resource: `${ref.type}:${ref.id}`, replaced: op.opId, owner: op.owner.incarnation }, 'force-delete replaced an operation in flight; asking its owner to abort it');
    try {
      await this.o.abortRun({ type: ref.type, id: ref.id, opId: op.opId, reason: 'force-delete' });
    } catch (err) {
      this.o.logger.warn({ err, resource: `${ref.type}:${ref.id}` }, 'could not send the abort notice; the force-delete\'s worker sends it again');
    }
  }

  /** Extends to `newSize` GiB; `in-use` volumes too when `allowInUse` (microversion 3.42). */
  async extendVolume(ctx: RequestContext, id: string, newSize: number, allowInUse: boolean): Promise<void> {
    const volume = await this.getVolume(ctx, id);
    if (newSize <= volume.size) {
      throw new InvalidInputError(`New size for extend must be greater than current size. (current: ${volume.size}, extended: ${newSize}).`);
    }
    const statuses = sourcesOf('volume', 'extending', 'api').filter((s) => allowInUse || s !== 'in-use');
    this.admit('extend_volume');
    const result = await this.unfrozen(volume.cluster, (fence) =>
      this.o.store.transition(
        { type: 'volume', id },
        {
          // A copy reading the volume must not see it grow mid-copy (`holds`).
          expect: { ...this.ownership(ctx), status: statuses, size: volume.size, holds: 0 },
          set: { status: 'extending', previous_status: valueOf('status') },
          op: { create: { kind: 'extend_volume', params: { newSize, oldSize: volume.size } } },
          by: 'api',
          ...fenced(fence),
        },
      ),
    );
    await this.recorded('volume', result, 'extend', id);
  }

  /** `os-reset_status`: sets what an admin says; a status change abandons the in-flight op. */
  async resetVolumeStatus(ctx: RequestContext, id: string, input: ResetStatusInput): Promise<void> {
    if (input.status !== undefined) this.checkResettable('volume', input.status);
    const set = {
      ...(input.status === undefined ? {} : { status: input.status as VolumeRecord['status'] }),
      ...(input.attachStatus === undefined ? {} : { attach_status: input.attachStatus }),
      ...(input.migrationStatus === undefined ? {} : { migration_status: input.migrationStatus }),
    };
    const result = await this.o.store.transition(
      { type: 'volume', id },
      { expect: this.ownership(ctx), set, ...(input.status === undefined ? {} : { op: 'remove' as const }), by: 'admin' },
    );
    await this.recorded('volume', result, 'reset the status of', id, false);
  }

  async createSnapshot(ctx: RequestContext, input: CreateSnapshotInput): Promise<SnapshotRecord> {
    const volume = await this.getVolume(ctx, input.volumeId);
    const statuses = input.allowInUse ? ['available', 'in-use'] : ['available'];
    this.admit('create_snapshot');
    const result = await this.unfrozen(volume.cluster, (fence) => this.o.store.create('snapshot', {
      record: {
        id: randomUUID(),
        volume_id: volume.id,
        name: input.name ?? null,
        description: input.description ?? null,
        size: volume.size,
        status: 'creating',
        previous_status: null,
        project_id: ctx.projectId,
        user_id: ctx.userId,
        cluster: volume.cluster,
        host: null,
        progress: '0%',
        metadata: { ...(input.metadata ?? {}) },
      },
      op: { kind: 'create_snapshot', params: { volumeId: volume.id, size: volume.size } },
      parent: { ref: { type: 'volume', id: volume.id }, expect: { status: statuses, size: volume.size } },
      ...fenced(fence),
    }));
    if (!result.ok && result.failed.field === 'volume.exists') throw new NotFoundError('volume', volume.id, `Volume ${previewText(volume.id)} could not be found.`);
    return (await this.recorded('snapshot', result, 'snapshot it')).record;
  }

  async getSnapshot(ctx: RequestContext, id: string): Promise<SnapshotRecord> {
    const snapshot = await this.o.store.get({ type: 'snapshot', id });
    if (!snapshot || !this.visible(ctx, snapshot)) throw new NotFoundError('snapshot', id, `Snapshot ${previewText(id)} could not be found.`);
    return snapshot;
  }

  listSnapshots(ctx: RequestContext, query: ListQuery, allTenants: boolean): Promise<Page<SnapshotRecord>> {
    return this.o.store.list('snapshot', this.scoped(ctx, query, allTenants));
  }

  async deleteSnapshot(ctx: RequestContext, id: string): Promise<void> {
    this.admit('delete_snapshot');
    const result = await this.unfrozen(this.o.cluster, (fence) =>
      this.o.store.transition(
        { type: 'snapshot', id },
        // No volume being created from it (`holds`): Cinder's `<snapshot>-delete_snapshot` lock, as a condition.
        { expect: { ...this.ownership(ctx), status: sourcesOf('snapshot', 'deleting', 'api'), holds: 0 }, set: { status: 'deleting' }, op: { create: { kind: 'delete_snapshot' } }, by: 'api', ...fenced(fence) },
      ),
    );
    await this.recorded('snapshot', result, 'delete', id);
  }

  async resetSnapshotStatus(ctx: RequestContext, id: string, status: string): Promise<void> {
    this.checkResettable('snapshot', status);
    const result = await this.o.store.transition(
      { type: 'snapshot', id },
      { expect: this.ownership(ctx), set: { status: status as SnapshotRecord['status'] }, op: 'remove', by: 'admin' },
    );
    await this.recorded('snapshot', result, 'reset the status of', id, false);
  }

  private checkResettable(resource: 'volume' | 'snapshot', status: string): void {
    if (!isKnownStatus(resource, status)) throw new InvalidInputError(`Invalid input received: '${previewText(status)}' is not a valid ${resource} status.`);
    if (isTransitional(resource, status)) {
      throw new InvalidInputError(
        `Invalid input received: cannot reset a ${resource} to ${status}: no operation would ever finish it (choose one of ${resettableStatuses(resource).join(', ')}).`,
      );
    }
  }

  private visible(ctx: RequestContext, record: { project_id: string }): boolean {
    return ctx.isAdmin || record.project_id === ctx.projectId;
  }

  /** A non-admin only changes its own project's resources; others look missing (404). */
  private ownership(ctx: RequestContext): Expect {
    return ctx.isAdmin ? {} : { project_id: ctx.projectId };
  }

  private scoped(ctx: RequestContext, query: ListQuery, allTenants: boolean): ListQuery {
    const projectId = ctx.isAdmin && allTenants ? query.filter?.projectId : ctx.projectId;
    const { projectId: _ignored, ...rest } = query.filter ?? {};
    return { ...query, filter: { ...rest, ...(projectId === undefined ? {} : { projectId }) } };
  }

  /**
   * Runs `write` unless `cluster` is frozen (Cinder's `assert_not_frozen`: nothing recorded or
   * queued). The answer may be remembered: its fence rides in the write, so a freeze since fails
   * the write's fence, and the question is asked again on a fresh read, once.
   */
  private async unfrozen<T>(cluster: string, write: (fence: Fence | undefined) => Promise<T>): Promise<T> {
    let admission = await this.o.admission.admitsChanges(cluster);
    for (let attempt = 1; ; attempt++) {
      if (!admission.accepts) throw new ClusterFrozenError(cluster, admission.reason);
      try {
        return await write(admission.fence);
      } catch (err) {
        if (!(err instanceof FencedError) || admission.fence === undefined || attempt > 1) throw err;
        admission = await this.o.admission.admitsChanges(cluster, { fresh: true });
      }
    }
  }

  /** Refuses an operation the live workers of the cluster cannot all run yet (nothing recorded). */
  private admit(kind: OpKind, cluster = this.o.cluster): void {
    const why = this.o.gate?.refuses(cluster, kind);
    if (why !== undefined) throw new UnavailableDuringUpgradeError(kind, why);
  }

  /** Turns a refused transition into an error, and publishes the op of an accepted one. */
  private async recorded<R>(resource: 'volume' | 'snapshot', result: TransitionResult<R>, action: string, id?: string, publish = true): Promise<{ record: R }> {
    if (!result.ok) {
      const failedId = id ?? '';
      if (result.failed.field === 'exists' || result.failed.field === 'project_id') {
        throw new NotFoundError(resource, failedId, `${resource === 'volume' ? 'Volume' : 'Snapshot'} ${previewText(failedId)} could not be found.`);
      }
      throw new ConditionFailedError(resource, failedId, result.failed, action);
    }
    if (publish && result.op) await this.publish(result.op, result.stored);
    return { record: result.record };
  }

  /** Publishes the job (carrying the op as stored, so the claim needs no read); a confirmed one is stamped in the next batch. */
  private async publish(op: OpRecord, stored: StoredOp | undefined): Promise<void> {
    try {
      if ((await this.o.publisher.publish(op, stored === undefined ? {} : { stored })) !== 'confirmed') return;
      this.o.stamps.add(op);
    } catch (err) {
      this.o.logger.warn({ err, resource: op.type, id: op.id, opId: op.opId }, 'publishing the op failed; the republish sweep will retry');
    }
  }
}

/** The `fence` field of a write, when there is one. */
function fenced(fence: Fence | undefined): { readonly fence?: Fence } {
  return fence === undefined ? {} : { fence };
}
