import type { VolumeRecord } from '../state/records.js';
import type { ResourceFilter, StateStore } from '../state/state-store.js';

/** Volumes read per page while scanning. */
const SCAN_PAGE = 500;

/**
 * Every volume matching `filter`, page by page (the store's limit/marker paging), so a scan
 * never holds more than a page. What finding an attachment by its id alone, and deleting a
 * volume type, cost: both read the volumes (attachments live in their volume's record).
 */
export async function* everyVolume(store: Pick<StateStore, 'list'>, filter: ResourceFilter = {}): AsyncGenerator<VolumeRecord> {
  let marker: string | undefined;
  for (;;) {
    const page = await store.list('volume', { filter, limit: SCAN_PAGE, ...(marker === undefined ? {} : { marker }) });
    for (const v of page.items) yield v;
    const last = page.items[page.items.length - 1];
    if (!page.more || !last) return;
    marker = last.id;
  }
}
