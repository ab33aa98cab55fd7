import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FencedError } from '../errors.js';

/**
 * A driver's part in fencing: one marker file per fenced incarnation in a directory every member
 * sees (the file driver's shared directory). The fencer writes the marker before the fence is
 * recorded; a call made for a fenced incarnation — a frozen process that wakes up, a partitioned
 * one — finds its marker and does nothing more. A real backend would do the same with its own
 * means: a Ceph blocklist entry, SCSI-3 persistent reservations, an NFS export change.
 */
export class FenceMarkers {
  constructor(readonly dir: string) {}

  /** Marks `incarnation` fenced (idempotent); resolves once the marker is durable enough to be seen by every member. */
  async mark(incarnation: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(this.path(incarnation), `${new Date().toISOString()}\n`, { flush: true });
  }

  /** True when `incarnation` was fenced. */
  async isFenced(incarnation: string): Promise<boolean> {
    try {
      await stat(this.path(incarnation));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Refuses a call made for a fenced incarnation.
   *
   * @throws FencedError naming the marker.
   */
  async refuseIfFenced(incarnation: string | undefined): Promise<void> {
    if (incarnation !== undefined && (await this.isFenced(incarnation))) {
      throw new FencedError(`fence marker ${this.path(incarnation)} exists`, `driver calls of ${incarnation}`);
    }
  }

  private path(incarnation: string): string {
    // Incarnation ids are `<host>@<backend>:<hex>`: safe as file names once `/` is ruled out.
    return join(this.dir, incarnation.replaceAll('/', '_'));
  }
}
