/**
 * Cinder's JSON views of attachments (cinder/api/v3/views/attachments.py) and of volume types
 * (cinder/api/v3/views/types.py).
 */
import type { AttachmentRecord } from '../state/attachments.js';
import type { VolumeType } from '../volume-types/volume-type-store.js';
import { cinderTime } from './views.js';

/** `GET /attachments` item: id, status, instance, volume_id. */
export function attachmentSummary(a: AttachmentRecord, volumeId: string): Record<string, unknown> {
  return { id: a.id, status: a.attach_status, instance: a.instance_uuid, volume_id: volumeId };
}

/** `GET /attachments/{id}`, `/attachments/detail` item and the create and update responses. */
export function attachmentDetail(a: AttachmentRecord, volumeId: string): Record<string, unknown> {
  return {
    ...attachmentSummary(a, volumeId),
    // Cinder renders a missing time as an empty string here, not null.
    attached_at: cinderTime(a.attached_at) ?? '',
    detached_at: '',
    attach_mode: a.attach_mode,
    connection_info: a.connection_info ?? {},
  };
}

/** A volume type as `type-show` and `type-list` print it. */
export function volumeTypeView(t: VolumeType): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    is_public: t.isPublic,
    'os-volume-type-access:is_public': t.isPublic,
    extra_specs: { ...t.extraSpecs },
    qos_specs_id: null,
  };
}
