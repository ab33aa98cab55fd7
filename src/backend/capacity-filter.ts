/**
 * Cinder's CapacityFilter, for one pool (pure). hearth has one pool per cluster and no
 * scheduler, so the filter decides whether a create or an extend *fits*; the worker runs it
 * before its driver call, with the pool its backend check last read plus what it admitted since
 * (`cinder/scheduler/filters/capacity_filter.py`, `sched_utils.calculate_capacity_factors`):
 *
 * - `reserved = floor(total × reserved_percentage / 100)`, and the pool is `total − reserved`;
 * - thin pools (`thin`, and a ratio ≥ 1): the pool may provision `ratio × (total − reserved)`;
 *   the request fails when `(provisioned + requested) / that` exceeds the ratio, or when the
 *   virtual free space `ratio × (total − reserved) − provisioned` is below the request;
 * - thick pools: the free space is the smaller of the reported free space and
 *   `total − reserved − provisioned`;
 * - a total of 0 or less fails; a request of 0 passes.
 *
 * The same race as Cinder's schedulers: two members that each see room for one more volume
 * may both admit one. hearth narrows it (a member counts what it admitted since its last read)
 * but does not close it; the driver's own `ENOSPC` is the last word.
 */

/** GiB in bytes. */
const GIB = 1024 ** 3;

/** A pool's numbers, in bytes. */
export interface PoolNumbers {
  readonly totalBytes: number;
  readonly freeBytes: number;
  readonly provisionedBytes: number;
  readonly thin: boolean;
  readonly maxOverSubscriptionRatio: number;
  readonly reservedPercentage: number;
}

/** The verdict, with Cinder's wording of why a request does not fit. */
export type CapacityVerdict = { readonly fits: true } | { readonly fits: false; readonly why: string };

/** `x` GiB with at most two decimals, as Cinder's logs print them. */
export function gib(bytes: number): string {
  return String(Math.round((bytes / GIB) * 100) / 100);
}

/**
 * Whether `requestedGiB` more fit on `pool` (`where`: e.g. `cluster ceph@rbd#rbd`).
 *
 * @param requestedGiB the new volume's size, or for an extend the increase.
 */
export function checkCapacity(pool: PoolNumbers, requestedGiB: number, where: string): CapacityVerdict {
  if (requestedGiB <= 0) return { fits: true };
  const total = pool.totalBytes / GIB;
  if (total <= 0) return { fits: false, why: `Insufficient free space for volume creation. Total capacity is ${gib(pool.totalBytes)} GiB on ${where}.` };
  const reserved = Math.floor((total * pool.reservedPercentage) / 100);
  const usable = total - reserved;
  const provisioned = pool.provisionedBytes / GIB;
  const ratio = pool.maxOverSubscriptionRatio;
  if (pool.thin && ratio >= 1) {
    const available = usable * ratio;
    const provisionedRatio = available > 0 ? (provisioned + requestedGiB) / available : Infinity;
    if (provisionedRatio > ratio) {
      return {
        fits: false,
        why: `Insufficient free space for thin provisioning. The ratio of provisioned capacity over total capacity ${provisionedRatio.toFixed(2)} has exceeded the maximum over subscription ratio ${ratio.toFixed(2)} on ${where}.`,
      };
    }
    const virtualFree = round2(available - provisioned);
    if (virtualFree < requestedGiB) {
      return { fits: false, why: `Insufficient free virtual space (${virtualFree} GiB) to accommodate thin provisioned ${requestedGiB} GiB volume on ${where}.` };
    }
    return { fits: true };
  }
  const calculatedFree = usable - provisioned;
  const free = round2(Math.min(pool.freeBytes / GIB, calculatedFree));
  if (free < requestedGiB) return { fits: false, why: `Insufficient free space for volume creation on ${where} (requested / avail): ${requestedGiB}/${free} GiB.` };
  return { fits: true };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
