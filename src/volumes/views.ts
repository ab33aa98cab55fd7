/**
 * Cinder's JSON views of volumes and snapshots (cinder/api/v3/views), with the fields each
 * microversion adds. hearth's API is admin-only for now (noauth), so the admin-only extension
 * attributes (`os-vol-host-attr:host`, `os-vol-tenant-attr:tenant_id`, migration status,
 * `cluster_name`) are always shown where the microversion has them.
 */
import { formatCinderTime } from '../api/cinder-time.js';
import { atLeast, type Microversion } from '../api/microversion.js';
import { attachmentsOf } from '../state/attachments.js';
import type { SnapshotRecord, VolumeRecord } from '../state/records.js';

/** The stable id hearth reports for its one volume type, `__DEFAULT__`. */
export const DEFAULT_VOLUME_TYPE_ID = '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11';

/** Where a view builds links from. */
export interface ViewContext {
  /** `http://host:port`: `api.publicUrl`, never the request's Host header. */
  readonly baseUrl: string;
  readonly projectId: string;
  readonly version: Microversion;
}

/** Cinder's datetime form: `2018-11-29T06:50:07.770785`, no zone; null stays null. */
export function cinderTime(epochMs: number | null): string | null {
  if (epochMs === null) return null;
  return formatCinderTime(epochMs);
}

function links(ctx: ViewContext, collection: string, id: string): { href: string; rel: string }[] {
  return [
    { href: `${ctx.baseUrl}/v3/${ctx.projectId}/${collection}/${id}`, rel: 'self' },
    { href: `${ctx.baseUrl}/${ctx.projectId}/${collection}/${id}`, rel: 'bookmark' },
  ];
}

/** `GET /volumes` item: id, name, links. */
export function volumeSummary(ctx: ViewContext, v: VolumeRecord): Record<string, unknown> {
  return { id: v.id, name: v.name, links: links(ctx, 'volumes', v.id) };
}

/** `GET /volumes/{id}`, `/volumes/detail` item and the create response. */
export function volumeDetail(ctx: ViewContext, v: VolumeRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: v.id,
    name: v.name,
    description: v.description,
    status: v.status,
    size: v.size,
    availability_zone: v.availability_zone,
    created_at: cinderTime(v.created_at),
    updated_at: cinderTime(v.updated_at),
    attachments: volumeAttachments(v),
    bootable: String(v.bootable),
    encrypted: false,
    multiattach: v.multiattach,
    volume_type: v.volume_type,
    snapshot_id: v.snapshot_id ?? null,
    source_volid: v.source_volid ?? null,
    consistencygroup_id: null,
    metadata: { ...v.metadata },
    links: links(ctx, 'volumes', v.id),
    user_id: v.user_id,
    replication_status: null,
    migration_status: v.migration_status,
    'os-vol-host-attr:host': v.host,
    'os-vol-mig-status-attr:migstat': v.migration_status,
    'os-vol-mig-status-attr:name_id': null,
    'os-vol-tenant-attr:tenant_id': v.project_id,
  };
  const at = (min: string): boolean => atLeast(ctx.version, min);
  if (at('3.13')) view.group_id = null;
  if (at('3.21')) view.provider_id = null;
  if (at('3.48')) Object.assign(view, { service_uuid: null, shared_targets: null });
  if (at('3.61')) view.cluster_name = v.cluster;
  if (at('3.63')) view.volume_type_id = v.volume_type_id ?? DEFAULT_VOLUME_TYPE_ID;
  if (at('3.65')) view.consumes_quota = true;
  return view;
}

/**
 * The volume's `attachments` as Cinder's volume view lists them: the attached ones (completed),
 * each with the server and where it was connected.
 */
function volumeAttachments(v: VolumeRecord): Record<string, unknown>[] {
  return attachmentsOf(v)
    .filter((a) => a.attach_status === 'attached')
    .map((a) => ({
      id: v.id,
      attachment_id: a.id,
      volume_id: v.id,
      server_id: a.instance_uuid,
      host_name: typeof a.connector?.host === 'string' ? a.connector.host : null,
      device: typeof a.connector?.mountpoint === 'string' ? a.connector.mountpoint : null,
      attached_at: cinderTime(a.attached_at),
    }));
}

/** `GET /snapshots` item. */
export function snapshotSummary(s: SnapshotRecord): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    description: s.description,
    volume_id: s.volume_id,
    status: s.status,
    size: s.size,
    metadata: { ...s.metadata },
    created_at: cinderTime(s.created_at),
    updated_at: cinderTime(s.updated_at),
  };
}

/** `GET /snapshots/{id}`, `/snapshots/detail` item and the create response. */
export function snapshotDetail(ctx: ViewContext, s: SnapshotRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    ...snapshotSummary(s),
    'os-extended-snapshot-attributes:progress': s.progress,
    'os-extended-snapshot-attributes:project_id': s.project_id,
  };
  if (atLeast(ctx.version, '3.14')) view.group_snapshot_id = null;
  if (atLeast(ctx.version, '3.41')) view.user_id = s.user_id;
  if (atLeast(ctx.version, '3.65')) view.consumes_quota = true;
  return view;
}
