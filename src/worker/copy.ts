/**
 * The driver call of a copy op (a clone, a volume from a snapshot): which source it reads and
 * how. The source is named by the new volume's record (`source_volid` / `snapshot_id`, written
 * with the hold in the same write as the volume), so a copy never reads a source it does not
 * hold.
 */
import { DriverError } from '../errors.js';
import type { DriverContext, VolumeDriver } from '../drivers/volume-driver.js';
import type { OpRecord, VolumeRecord } from '../state/records.js';

/**
 * Runs the copy of `op` into the volume `record` (held in `creating` by the op).
 *
 * @throws DriverError (not retryable) when the record names no source, or not the kind's; the
 *   driver's own errors pass through.
 */
export async function copyFromSource(driver: VolumeDriver, op: Pick<OpRecord, 'id' | 'kind' | 'opId'>, record: VolumeRecord, ctx: DriverContext): Promise<void> {
  const volume = { id: op.id, sizeGiB: record.size };
  if (op.kind === 'clone_volume' && typeof record.source_volid === 'string') {
    return driver.createClonedVolume(volume, { id: record.source_volid }, ctx);
  }
  if (op.kind === 'create_volume_from_snapshot' && typeof record.snapshot_id === 'string') {
    return driver.createVolumeFromSnapshot(volume, { id: record.snapshot_id }, ctx);
  }
  throw new DriverError(driver.name, op.kind === 'clone_volume' ? 'createClonedVolume' : 'createVolumeFromSnapshot', `op ${op.opId} (${op.kind}) of volume ${op.id}: the volume names no source of that kind`);
}
