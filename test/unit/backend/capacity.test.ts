import { describe, expect, it } from 'vitest';
import { checkCapacity, type PoolNumbers } from '../../../src/backend/capacity-filter.js';
import { buildPoolViews, poolName } from '../../../src/backend/pools.js';
import type { PoolReport } from '../../../src/membership/backend-report.js';
import type { AliveMember } from '../../../src/membership/records.js';

const GIB = 1024 ** 3;
const pool = (over: Partial<PoolNumbers> = {}): PoolNumbers => ({
  totalBytes: 100 * GIB,
  freeBytes: 100 * GIB,
  provisionedBytes: 0,
  thin: true,
  maxOverSubscriptionRatio: 20,
  reservedPercentage: 0,
  ...over,
});

describe("Cinder's capacity filter on one pool", () => {
  it('thin: fits within ratio × (total − reserved) − provisioned, and says why not', () => {
    expect(checkCapacity(pool(), 2000, 'cluster c@be#be')).toEqual({ fits: true });
    const refused = checkCapacity(pool({ provisionedBytes: 1990 * GIB }), 11, 'cluster c@be#be');
    expect(refused).toEqual({ fits: false, why: 'Insufficient free virtual space (10 GiB) to accommodate thin provisioned 11 GiB volume on cluster c@be#be.' });
    // Thin pools do not look at the reported free space (Cinder's rule): a full disk is the health check's business.
    expect(checkCapacity(pool({ freeBytes: 0 }), 10, 'x').fits).toBe(true);
  });

  it('a ratio of 1 forbids over-subscription; the reserve comes off the total, rounded down', () => {
    expect(checkCapacity(pool({ maxOverSubscriptionRatio: 1 }), 100, 'x').fits).toBe(true);
    expect(checkCapacity(pool({ maxOverSubscriptionRatio: 1 }), 101, 'x').fits).toBe(false);
    expect(checkCapacity(pool({ maxOverSubscriptionRatio: 1, reservedPercentage: 10 }), 91, 'x').fits).toBe(false);
    expect(checkCapacity(pool({ maxOverSubscriptionRatio: 1, reservedPercentage: 10 }), 90, 'x').fits).toBe(true);
    expect(checkCapacity(pool({ totalBytes: 99.5 * GIB, maxOverSubscriptionRatio: 1, reservedPercentage: 1 }), 99, 'x').fits).toBe(true);
  });

  it('thick: the smaller of the free space and total − reserved − provisioned', () => {
    const thick = pool({ thin: false, freeBytes: 5 * GIB, provisionedBytes: 10 * GIB });
    expect(checkCapacity(thick, 5, 'x').fits).toBe(true);
    expect(checkCapacity(thick, 6, 'x')).toEqual({ fits: false, why: 'Insufficient free space for volume creation on x (requested / avail): 6/5 GiB.' });
  });

  it('a pool of no size fits nothing; a request of nothing always fits', () => {
    expect(checkCapacity(pool({ totalBytes: 0 }), 1, 'x').fits).toBe(false);
    expect(checkCapacity(pool({ totalBytes: 0 }), 0, 'x').fits).toBe(true);
  });
});

describe('pool views from the members\' reports', () => {
  const report = (free: number, atMs: number): PoolReport => ({
    totalBytes: 10 * GIB,
    freeBytes: free * GIB,
    provisionedBytes: 0,
    allocatedBytes: 0,
    thin: true,
    maxOverSubscriptionRatio: 20,
    reservedPercentage: 0,
    driver: 'file',
    atMs,
  });
  const member = (host: string, cluster: string, state: 'up' | 'down', pool: PoolReport | null): AliveMember => ({
    host,
    cluster,
    incarnation: `${host}:1`,
    heartbeatAtMs: 0,
    aliveRevision: '1',
    backend: { state, reason: state === 'down' ? 'marker missing' : null, checkedAtMs: 0, pool },
  });

  it('one pool per cluster: the freshest report of a member that is up, never a sum', () => {
    const views = buildPoolViews({
      alive: [member('a@be', 'c@be', 'up', report(5, 100)), member('b@be', 'c@be', 'up', report(4, 200)), member('d@be', 'c@be', 'down', report(1, 300)), member('e@be', 'k@be', 'down', report(3, 1))],
    });
    expect(views.map((v) => [v.name, v.state, v.reportedBy, v.pool.freeBytes / GIB])).toEqual([
      ['c@be#be', 'up', 'b@be', 4],
      ['k@be#be', 'down', 'e@be', 3],
    ]);
    expect(poolName('ceph@rbd')).toBe('ceph@rbd#rbd');
  });

  it('no pool for a cluster whose live members reported none', () => {
    expect(buildPoolViews({ alive: [member('a@be', 'c@be', 'up', null), { host: 'x@be', cluster: 'c@be', incarnation: 'x:1', heartbeatAtMs: 0, aliveRevision: '1' }] })).toEqual([]);
  });
});
