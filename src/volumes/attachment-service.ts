import { randomUUID } from 'node:crypto';
import { CoordinatorError, FencedError, InvalidInputError, NotFoundError } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import { previewText } from '../preview.js';
import {
  type AttachmentRecord,
  attachmentsOf,
  type AttachMode,
  settled,
  volumeAttachStatus,
  withAttachment,
  withoutAttachment,
} from '../state/attachments.js';
import type { Expect } from '../state/expect.js';
import type { OpRecord, VolumeRecord } from '../state/records.js';
import type { OpKind } from '../state/state-machine.js';
import { type StateStore, type StoredOp, type TransitionRequest, type TransitionResult, valueOf } from '../state/state-store.js';
import type { ClusterAdmission } from './cluster-admission.js';
import { ClusterFrozenError, ConditionFailedError } from './errors.js';
import type { JobPublisher } from './job-publisher.js';
import { type OperationGate, UnavailableDuringUpgradeError } from './operation-gate.js';
import { everyVolume } from './volume-scan.js';
import type { RequestContext } from './volume-service.js';

/** How long an attachment-update or -delete waits for its worker by default (Cinder's `rpc_response_timeout`). */
export const DEFAULT_ATTACH_WAIT_MS = 60_000;

/** Reads between two looks at a volume while waiting for its worker. */
const WAIT_POLL_MS = 50;

/** Attempts of one attachment change against concurrent changes of the same volume record. */
const CHANGE_ATTEMPTS = 16;

/** An attachment with the volume it belongs to. */
export interface AttachmentOf {
  readonly attachment: AttachmentRecord;
  readonly volume: VolumeRecord;
}

/** The worker could not make or end a connection, or did not answer in time (Cinder: HTTP 500). */
export class AttachmentFailedError extends CoordinatorError {
  constructor(message: string) {
    super('DRIVER_ERROR', message);
  }
}

/** Options of {@link AttachmentService}. */
export interface AttachmentServiceOptions {
  readonly store: StateStore;
  readonly publisher: JobPublisher;
  readonly gate?: OperationGate;
  /** The cluster whose workers the gate is asked about (the API's). */
  readonly cluster: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long update and delete wait for the worker's connection or disconnection. */
  readonly waitMs?: number;
  /** Refuses attachment changes while the volume's cluster is frozen (absent: never). */
  readonly admission?: Pick<ClusterAdmission, 'admitsChanges'>;
}

/**
 * The op change of a transition between resting statuses: none exists (a resting status has no
 * op), and saying so makes the store compare the op too, so a decision taken on a stale view of
 * it (the etcd adapter's cache) is re-read and decided again rather than refused.
 */
const NO_OP = 'remove' as const;

/** A change of one volume record, decided on the record as read: the transition, or nothing to write. */
type Decision = { readonly request: TransitionRequest<VolumeRecord>; readonly action: string } | { readonly none: true };

/**
 * Cinder's v3 attachment API (3.27; attachment-complete 3.44) and `os-force_detach`. An
 * attachment lives in its volume's record (`state/attachments.ts`), so every change is one
 * compare-and-swap of the volume that expects both the status it needs and the revision it read:
 * of two attachment-creates on a volume that is not multiattach exactly one wins, and the other
 * is refused naming the status it found; an attach and a delete of one volume likewise.
 *
 * A connection (attachment-update, or create with a connector) and a disconnection (delete of a
 * connected attachment, force-detach) are driver calls: the API records an `attach_volume` /
 * `detach_volume` op, publishes it, and waits (bounded, `waitMs`) for the worker's final write,
 * as Cinder's API waits on its RPC call. A timeout is answered 500 but changes nothing: the
 * worker still finishes, and an orphaned op is cleaned (docs/cleanup.md).
 *
 * Failure semantics: a refused condition → {@link ConditionFailedError} naming it, nothing
 * written; unknown volume or attachment → {@link NotFoundError}; a driver failure or a timeout →
 * {@link AttachmentFailedError}; store errors pass through.
 */
export class AttachmentService {
  /** Attachment id → volume id, learnt on the way: spares a scan of the volumes (checked on use). */
  private readonly volumeOf = new Map<string, string>();

  constructor(private readonly o: AttachmentServiceOptions) {}

  /** attachment-create: reserves (no connector) or reserves and connects (a connector). */
  async create(ctx: RequestContext, input: { volumeId: string; instanceUuid: string | null; connector: Readonly<Record<string, unknown>> | null; mode: AttachMode }): Promise<AttachmentOf> {
    const connect = input.connector !== null && Object.keys(input.connector).length > 0;
    this.admit('attach_volume');
    const id = randomUUID();
    const attachment: AttachmentRecord = {
      id,
      instance_uuid: input.instanceUuid,
      attach_status: connect ? 'attaching' : 'reserved',
      attach_mode: input.mode,
      connector: connect ? input.connector : null,
      connection_info: null,
      attached_at: null,
      created_at: this.o.clock.now(),
    };
    const result = await this.change(ctx, input.volumeId, (v) => {
      if (v.status.includes('error')) {
        throw new InvalidInputError(
          `Invalid volume: Volume attachments can not be created if the volume is in an error state. The Volume ${v.id} currently has a status of: ${v.status}.`,
        );
      }
      const attachments = [...attachmentsOf(v), attachment];
      // Cinder's override (LP 1694530): a server that has the volume already may reserve it again
      // (Nova migrating it to another host), whatever multiattach says.
      const sameServer = input.instanceUuid !== null && (v.status === 'in-use' || v.status === 'reserved') && attachmentsOf(v).some((a) => a.instance_uuid === input.instanceUuid);
      const statuses = sameServer ? [v.status] : v.multiattach ? ['available', 'in-use'] : ['available'];
      const expect: Expect = { ...this.ownership(ctx), multiattach: v.multiattach, status: statuses, revision: v.revision };
      if (!connect) return { action: 'reserve', request: { expect, set: { ...settled(attachments), status: 'reserved' }, op: NO_OP, by: 'api' } };
      return {
        action: 'attach',
        request: {
          expect,
          set: { status: 'attaching', previous_status: valueOf('status'), attach_status: volumeAttachStatus(attachments), attachments },
          op: { create: { kind: 'attach_volume', params: { attachmentId: id, connector: input.connector } } },
          by: 'api',
        },
      };
    });
    this.volumeOf.set(id, input.volumeId);
    if (!connect) return { attachment, volume: result.record };
    return this.connected(ctx, input.volumeId, id);
  }

  /** attachment-update: connects a reserved attachment for `connector`. */
  async update(ctx: RequestContext, attachmentId: string, connector: Readonly<Record<string, unknown>>): Promise<AttachmentOf> {
    this.admit('attach_volume');
    const { volume } = await this.find(ctx, attachmentId);
    await this.change(ctx, volume.id, (v) => {
      const a = attachmentsOf(v).find((x) => x.id === attachmentId);
      if (!a) throw this.notFound(attachmentId);
      if (v.status.includes('error')) {
        throw new ConflictError(`Volume attachments can not be updated if the volume is in an error state. The Volume ${v.id} currently has a status of: ${v.status}.`);
      }
      if (a.attach_status !== 'reserved' && a.attach_status !== 'error_attaching') {
        throw new InvalidInputError(`Invalid volume: attachment ${attachmentId} must be reserved to be connected (its status is ${a.attach_status}); create another attachment.`);
      }
      const attachments = withAttachment(attachmentsOf(v), attachmentId, (x) => ({ ...x, attach_status: 'attaching', connector, connection_info: null }));
      return {
        action: 'attach',
        request: {
          expect: { ...this.ownership(ctx), status: ['reserved', 'in-use'], revision: v.revision },
          set: { status: 'attaching', previous_status: valueOf('status'), attach_status: volumeAttachStatus(attachments), attachments },
          op: { create: { kind: 'attach_volume', params: { attachmentId, connector } } },
          by: 'api',
        },
      };
    });
    return this.connected(ctx, volume.id, attachmentId);
  }

  /** attachment-complete: the consumer connected; the attachment is attached, the volume in-use. */
  async complete(ctx: RequestContext, attachmentId: string): Promise<void> {
    this.admit('attach_volume');
    const { volume } = await this.find(ctx, attachmentId);
    await this.change(ctx, volume.id, (v) => {
      const a = attachmentsOf(v).find((x) => x.id === attachmentId);
      if (!a) throw this.notFound(attachmentId);
      if (a.attach_status === 'attached') return { none: true };
      if (a.attach_status !== 'attaching' || a.connection_info === null) {
        throw new InvalidInputError(`Invalid volume: attachment ${attachmentId} is not connected (its status is ${a.attach_status}): update it with a connector first.`);
      }
      const attachments = withAttachment(attachmentsOf(v), attachmentId, (x) => ({ ...x, attach_status: 'attached' }));
      return { action: 'complete the attachment', request: { expect: { ...this.ownership(ctx), status: ['reserved', 'in-use'], revision: v.revision }, set: settled(attachments), op: NO_OP, by: 'api' } };
    });
  }

  /**
   * attachment-delete: an attachment never connected goes at once; a connected one is
   * disconnected by a worker first (`detach_volume`). Answers the volume's remaining attachments.
   */
  async delete(ctx: RequestContext, attachmentId: string): Promise<AttachmentOf[]> {
    this.admit('detach_volume');
    const { volume } = await this.find(ctx, attachmentId);
    return this.detach(ctx, volume.id, attachmentId, false);
  }

  /**
   * `os-force_detach` (admins): disconnects and removes the attachment whatever the driver
   * answers. Without an attachment id, the volume must have exactly one.
   */
  async forceDetach(ctx: RequestContext, volumeId: string, attachmentId: string | null): Promise<void> {
    this.admit('detach_volume');
    const volume = await this.volume(ctx, volumeId);
    const attachments = attachmentsOf(volume);
    let id = attachmentId;
    if (id === null) {
      if (attachments.length !== 1) {
        throw new InvalidInputError(`Invalid volume: volume ${volumeId} has ${attachments.length} attachments; name the attachment_id to detach.`);
      }
      id = (attachments[0] as AttachmentRecord).id;
    }
    if (!attachments.some((a) => a.id === id)) throw this.notFound(id);
    await this.detach(ctx, volumeId, id, true);
  }

  async get(ctx: RequestContext, attachmentId: string): Promise<AttachmentOf> {
    return this.find(ctx, attachmentId);
  }

  /** attachment-list: every attachment of the caller's volumes (every project's with `allTenants`). */
  async list(
    ctx: RequestContext,
    filter: { volumeId?: string; status?: string; instanceId?: string },
    allTenants: boolean,
    page: { readonly limit?: number; readonly marker?: string } = {},
  ): Promise<AttachmentOf[]> {
    const out: AttachmentOf[] = [];
    const scope = ctx.isAdmin && allTenants ? {} : { projectId: ctx.projectId };
    const volumes = filter.volumeId !== undefined ? [await this.o.store.get({ type: 'volume', id: filter.volumeId })] : everyVolume(this.o.store, scope);
    for await (const volume of volumes) {
      if (!volume || (!(ctx.isAdmin && allTenants) && volume.project_id !== ctx.projectId)) continue;
      for (const attachment of attachmentsOf(volume)) {
        if (filter.status !== undefined && attachment.attach_status !== filter.status) continue;
        if (filter.instanceId !== undefined && attachment.instance_uuid !== filter.instanceId) continue;
        this.volumeOf.set(attachment.id, volume.id);
        out.push({ attachment, volume });
      }
    }
    out.sort((a, b) => (a.attachment.id < b.attachment.id ? -1 : 1));
    // Cinder's limit/marker paging, by attachment id.
    const from = page.marker === undefined ? 0 : out.findIndex((a) => a.attachment.id === page.marker) + 1;
    if (page.marker !== undefined && from === 0) throw new InvalidInputError(`Invalid input received: marker ${previewText(page.marker)} not found.`);
    return out.slice(from, page.limit === undefined ? undefined : from + page.limit);
  }

  private async detach(ctx: RequestContext, volumeId: string, attachmentId: string, force: boolean): Promise<AttachmentOf[]> {
    const result = await this.change(ctx, volumeId, (v) => {
      const a = attachmentsOf(v).find((x) => x.id === attachmentId);
      if (!a) throw this.notFound(attachmentId);
      const expect: Expect = { ...this.ownership(ctx), status: ['reserved', 'in-use'], revision: v.revision };
      if (a.attach_status === 'detaching') throw new InvalidInputError(`Invalid volume: attachment ${attachmentId} is being detached already.`);
      if (a.attach_status === 'reserved' || a.attach_status === 'error_attaching') {
        // Nothing was connected: nothing for a driver to end.
        return { action: 'delete the attachment', request: { expect, set: settled(withoutAttachment(attachmentsOf(v), attachmentId)), op: NO_OP, by: 'api' } };
      }
      const attachments = withAttachment(attachmentsOf(v), attachmentId, (x) => ({ ...x, attach_status: 'detaching' }));
      return {
        action: 'detach',
        request: {
          expect,
          set: { status: 'detaching', previous_status: valueOf('status'), attach_status: volumeAttachStatus(attachments), attachments },
          op: { create: { kind: 'detach_volume', params: { attachmentId, connector: a.connector, from: a.attach_status, ...(force ? { force: true } : {}) } } },
          by: 'api',
        },
      };
    });
    let volume = result.record;
    if (volume.status === 'detaching') {
      volume = await this.waitFor(ctx, volumeId, (v) => !attachmentsOf(v).some((a) => a.id === attachmentId && a.attach_status === 'detaching'), 'delete the attachment');
      if (attachmentsOf(volume).some((a) => a.id === attachmentId)) {
        throw new AttachmentFailedError(`Unable to delete the attachment (the driver could not end the connection of attachment ${attachmentId}).`);
      }
    }
    this.volumeOf.delete(attachmentId);
    return attachmentsOf(volume).map((attachment) => ({ attachment, volume }));
  }

  /** Waits for the worker's connection of `attachmentId`; its failure is an error. */
  private async connected(ctx: RequestContext, volumeId: string, attachmentId: string): Promise<AttachmentOf> {
    const volume = await this.waitFor(
      ctx,
      volumeId,
      (v) => {
        const a = attachmentsOf(v).find((x) => x.id === attachmentId);
        return a === undefined || a.attach_status !== 'attaching' || a.connection_info !== null;
      },
      'update the attachment',
    );
    const attachment = attachmentsOf(volume).find((x) => x.id === attachmentId);
    if (!attachment) throw this.notFound(attachmentId);
    if (attachment.attach_status !== 'attaching' || attachment.connection_info === null) {
      throw new AttachmentFailedError(`Unable to update attachment (the driver could not connect attachment ${attachmentId}; its status is ${attachment.attach_status}).`);
    }
    return { attachment, volume };
  }

  /** Reads the volume until `done` holds, at most `waitMs`. */
  private async waitFor(ctx: RequestContext, volumeId: string, done: (v: VolumeRecord) => boolean, what: string): Promise<VolumeRecord> {
    const deadline = this.o.clock.now() + (this.o.waitMs ?? DEFAULT_ATTACH_WAIT_MS);
    for (;;) {
      const volume = await this.volume(ctx, volumeId);
      if (done(volume)) return volume;
      if (this.o.clock.now() >= deadline) {
        throw new AttachmentFailedError(`Unable to ${what}: no worker finished it within ${Math.round((this.o.waitMs ?? DEFAULT_ATTACH_WAIT_MS) / 1000)} s; it goes on, see the volume's status.`);
      }
      await this.o.clock.sleep(WAIT_POLL_MS);
    }
  }

  /**
   * One compare-and-swap of the volume, decided on the record as read; a write that lost only
   * on the revision (another change of the same record landed first) is decided again on the
   * new record, so a lost race ends in a refusal that names the condition that failed.
   */
  private async change(ctx: RequestContext, volumeId: string, decide: (v: VolumeRecord) => Decision): Promise<{ record: VolumeRecord }> {
    for (let attempt = 1; ; attempt++) {
      const volume = await this.volume(ctx, volumeId);
      const decision = decide(volume);
      if ('none' in decision) return { record: volume };
      // Frozen: refused before anything is recorded (Cinder's assert_not_frozen). The admission's
      // fence rides in the write; when the cluster record changed since, ask again on a fresh read.
      const admission = await this.o.admission?.admitsChanges(volume.cluster, attempt > 1 ? { fresh: true } : {});
      if (admission && !admission.accepts) throw new ClusterFrozenError(volume.cluster, admission.reason);
      let result: TransitionResult<VolumeRecord>;
      try {
        result = await this.o.store.transition({ type: 'volume', id: volumeId }, { ...decision.request, ...(admission?.fence ? { fence: admission.fence } : {}) });
      } catch (err) {
        if (!(err instanceof FencedError) || !admission?.fence || attempt >= CHANGE_ATTEMPTS) throw err;
        continue;
      }
      if (result.ok) {
        if (result.op) await this.publish(result.op, result.stored);
        return { record: result.record };
      }
      if (result.failed.field === 'exists' || result.failed.field === 'project_id') throw new NotFoundError('volume', volumeId, `Volume ${previewText(volumeId)} could not be found.`);
      if (result.failed.field !== 'revision' || attempt >= CHANGE_ATTEMPTS) throw new ConditionFailedError('volume', volumeId, result.failed, decision.action);
    }
  }

  private async volume(ctx: RequestContext, id: string): Promise<VolumeRecord> {
    const volume = await this.o.store.get({ type: 'volume', id });
    if (!volume || !(ctx.isAdmin || volume.project_id === ctx.projectId)) throw new NotFoundError('volume', id, `Volume ${previewText(id)} could not be found.`);
    return volume;
  }

  /** The attachment and its volume: from the cache when it still holds, else by a scan of the visible volumes. */
  private async find(ctx: RequestContext, attachmentId: string): Promise<AttachmentOf> {
    const known = this.volumeOf.get(attachmentId);
    if (known !== undefined) {
      const volume = await this.o.store.get({ type: 'volume', id: known });
      const attachment = volume && attachmentsOf(volume).find((a) => a.id === attachmentId);
      if (volume && attachment && (ctx.isAdmin || volume.project_id === ctx.projectId)) return { attachment, volume };
      this.volumeOf.delete(attachmentId);
    }
    for await (const volume of everyVolume(this.o.store, ctx.isAdmin ? {} : { projectId: ctx.projectId })) {
      const attachment = attachmentsOf(volume).find((a) => a.id === attachmentId);
      if (attachment) {
        this.volumeOf.set(attachmentId, volume.id);
        return { attachment, volume };
      }
    }
    throw this.notFound(attachmentId);
  }

  private notFound(attachmentId: string): NotFoundError {
    return new NotFoundError('attachment', attachmentId, `Volume attachment could not be found with filter: attachment_id = ${previewText(attachmentId)}.`);
  }

  private ownership(ctx: RequestContext): Expect {
    return ctx.isAdmin ? {} : { project_id: ctx.projectId };
  }

  private admit(kind: OpKind): void {
    const why = this.o.gate?.refuses(this.o.cluster, kind);
    if (why !== undefined) throw new UnavailableDuringUpgradeError(kind, why);
  }

  /**
   * Publishes the job. A confirmed publish is not stamped (`publishedAt`): the request waits for
   * the op's end anyway, and a stamp landing after it would be a write after the answer; an op
   * still queued at the sweep is published again, and the claim drops the duplicate.
   */
  private async publish(op: OpRecord, stored: StoredOp | undefined): Promise<void> {
    try {
      await this.o.publisher.publish(op, stored === undefined ? {} : { stored });
    } catch (err) {
      this.o.logger.warn({ err, resource: op.type, id: op.id, opId: op.opId }, 'publishing the op failed; the republish sweep will retry');
    }
  }
}

/** Cinder's ResourceConflict (HTTP 409): the volume is in a state that forbids the change. */
export class ConflictError extends CoordinatorError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}
