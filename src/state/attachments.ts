/**
 * A volume's attachments (Cinder's `volume_attachment` rows) and the pure rules that derive a
 * volume's resting `status` and `attach_status` from them (no I/O).
 *
 * hearth keeps a volume's attachments inside the volume record, so every attachment change is
 * one compare-and-swap of that one record: reserving, connecting, completing and deleting an
 * attachment race a delete, an extend or a second attachment on the same revision, and exactly
 * one of them wins. The price is that finding an attachment by its id alone means finding its
 * volume first (`volumes/attachment-service.ts`).
 *
 * An attachment's life, in Cinder's `attach_status` words:
 *
 * | attach_status | meaning | the volume rests in |
 * |---|---|---|
 * | reserved | created without a connector: nothing connected yet | reserved |
 * | attaching | a connection exists (the driver returned connection info); not completed | reserved |
 * | attached | attachment-complete was called | in-use |
 * | detaching | a worker is ending its connection | — (the volume is `detaching`) |
 * | error_attaching | the driver refused the connection | reserved |
 *
 * While a worker connects (`attach_volume`) or disconnects (`detach_volume`) the volume is in
 * the transitional `attaching` / `detaching` status, held by the op; outside those, its status is
 * {@link restingStatus}: `in-use` when an attachment is attached, `reserved` when one exists but
 * none is attached, `available` when none exists. Cinder shows `attaching` from the connection
 * to attachment-complete; in hearth `attaching` means a worker is connecting, so a client that
 * never completes cannot keep an op open.
 */

/** Cinder's `attach_status` of one attachment. */
export type AttachmentStatus = 'reserved' | 'attaching' | 'attached' | 'detaching' | 'error_attaching';

/** Every attachment status, for validation. */
export const ATTACHMENT_STATUSES: readonly AttachmentStatus[] = ['reserved', 'attaching', 'attached', 'detaching', 'error_attaching'];

/** Cinder's attach modes (`null`: honour the volume's own setting). */
export type AttachMode = 'rw' | 'ro' | 'null';

/** One attachment as stored in its volume's record. Times are epoch ms. */
export interface AttachmentRecord {
  /** A UUID. */
  readonly id: string;
  /** The server (Nova instance) it is for; Cinder's `instance_uuid`. */
  readonly instance_uuid: string | null;
  readonly attach_status: AttachmentStatus;
  readonly attach_mode: AttachMode;
  /** What the consumer sent (os-brick's connector); null until it sent one. */
  readonly connector: Readonly<Record<string, unknown>> | null;
  /** What the driver answered for that connector; null until it did. */
  readonly connection_info: Readonly<Record<string, unknown>> | null;
  /** When the connection was made (Cinder's `attach_time`). */
  readonly attached_at: number | null;
  readonly created_at: number;
}

/** A volume's attachments: an absent field (records written before it existed) is none. */
export function attachmentsOf(volume: { readonly attachments?: readonly AttachmentRecord[] }): readonly AttachmentRecord[] {
  return volume.attachments ?? [];
}

/** The volume status its attachments imply once no worker is connecting or disconnecting. */
export function restingStatus(attachments: readonly AttachmentRecord[]): 'available' | 'reserved' | 'in-use' {
  if (attachments.some((a) => a.attach_status === 'attached')) return 'in-use';
  return attachments.length > 0 ? 'reserved' : 'available';
}

/**
 * The volume's `attach_status` its attachments imply (Cinder's priority: attached, then
 * attaching, then detaching; reserved attachments leave it `detached`).
 */
export function volumeAttachStatus(attachments: readonly AttachmentRecord[]): 'detached' | 'attaching' | 'attached' | 'detaching' {
  for (const status of ['attached', 'attaching', 'detaching'] as const) if (attachments.some((a) => a.attach_status === status)) return status;
  return 'detached';
}

/** The attachments with `id`'s replaced by `change(it)`; unchanged when absent. */
export function withAttachment(attachments: readonly AttachmentRecord[], id: string, change: (a: AttachmentRecord) => AttachmentRecord): AttachmentRecord[] {
  return attachments.map((a) => (a.id === id ? change(a) : a));
}

/** The attachments without `id`. */
export function withoutAttachment(attachments: readonly AttachmentRecord[], id: string): AttachmentRecord[] {
  return attachments.filter((a) => a.id !== id);
}

/** What the volume record gets when its attachments become `attachments` and no op holds it. */
export function settled(attachments: readonly AttachmentRecord[]): {
  readonly status: 'available' | 'reserved' | 'in-use';
  readonly attach_status: 'detached' | 'attaching' | 'attached' | 'detaching';
  readonly attachments: readonly AttachmentRecord[];
  readonly previous_status: null;
} {
  return { status: restingStatus(attachments), attach_status: volumeAttachStatus(attachments), attachments, previous_status: null };
}

/** The params an `attach_volume` / `detach_volume` op carries. */
export interface AttachmentOpParams {
  readonly attachmentId: string;
  /** attach: the connector to connect; detach: the connector the connection was made for. */
  readonly connector?: Readonly<Record<string, unknown>> | null;
  /** detach: the attachment's status before it began (what an orphaned detach returns it to). */
  readonly from?: AttachmentStatus;
  /** detach (`os-force_detach`): the attachment is removed even when the driver fails. */
  readonly force?: boolean;
}

/** Reads an attach/detach op's params. @throws Error when it carries no attachment id (a bug). */
export function attachmentOpParams(params: Readonly<Record<string, unknown>>): AttachmentOpParams {
  const found = maybeAttachmentOpParams(params);
  if (!found) throw new Error('an attach or detach op carries no attachmentId');
  return found;
}

/** An attach/detach op's params; undefined when it names no attachment (an op of the legacy attach, which hearth's API never records). */
export function maybeAttachmentOpParams(params: Readonly<Record<string, unknown>>): AttachmentOpParams | undefined {
  const attachmentId = params.attachmentId;
  if (typeof attachmentId !== 'string') return undefined;
  const connector = params.connector;
  const from = params.from;
  return {
    attachmentId,
    ...(typeof connector === 'object' ? { connector: connector as Record<string, unknown> | null } : {}),
    ...(typeof from === 'string' && (ATTACHMENT_STATUSES as readonly string[]).includes(from) ? { from: from as AttachmentStatus } : {}),
    ...(params.force === true ? { force: true } : {}),
  };
}

/**
 * The end of an attach (`attach_volume`): on success the attachment is connected (`attaching`,
 * with the driver's connection info), on failure `error_attaching`; the volume rests as its
 * attachments say.
 */
export function afterConnect(
  attachments: readonly AttachmentRecord[],
  params: AttachmentOpParams,
  outcome: { readonly ok: true; readonly connectionInfo: Readonly<Record<string, unknown>>; readonly at: number } | { readonly ok: false },
): ReturnType<typeof settled> {
  return settled(
    withAttachment(attachments, params.attachmentId, (a) =>
      outcome.ok ? { ...a, attach_status: 'attaching', connection_info: outcome.connectionInfo, attached_at: outcome.at } : { ...a, attach_status: 'error_attaching', connection_info: null },
    ),
  );
}

/**
 * The end of a detach (`detach_volume`): on success (or when forced) the attachment is gone; on
 * failure it returns to the status it had before.
 */
export function afterDisconnect(attachments: readonly AttachmentRecord[], params: AttachmentOpParams, ok: boolean): ReturnType<typeof settled> {
  if (ok || params.force === true) return settled(withoutAttachment(attachments, params.attachmentId));
  return settled(withAttachment(attachments, params.attachmentId, (a) => ({ ...a, attach_status: params.from ?? 'attached' })));
}

/**
 * Cleanup of an orphaned attach: its worker died mid-connection, so whether the driver made the
 * connection is unknown and its info was never recorded. The attachment returns to `reserved`
 * (kept, unconnected): its client may update it again or delete it.
 */
export function afterOrphanedConnect(attachments: readonly AttachmentRecord[], params: AttachmentOpParams): ReturnType<typeof settled> {
  return settled(withAttachment(attachments, params.attachmentId, (a) => ({ ...a, attach_status: 'reserved', connection_info: null, attached_at: null })));
}

/**
 * Cleanup of an orphaned detach: whether the connection ended is unknown, so the attachment is
 * kept as it was before (`attached` → the volume is `in-use` again) and can be deleted again.
 */
export function afterOrphanedDisconnect(attachments: readonly AttachmentRecord[], params: AttachmentOpParams): ReturnType<typeof settled> {
  return afterDisconnect(attachments, { ...params, force: false }, false);
}
