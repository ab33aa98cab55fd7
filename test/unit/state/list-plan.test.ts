import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors.js';
import { compareInOrder, INDEX_ORDERS, MAX_LIST_LIMIT, normalizeSort, planList, sortableKey } from '../../../src/state/list-plan.js';
import type { ResourceRecord } from '../../../src/state/records.js';

describe('listing plans', () => {
  it('appends Cinder\'s default keys in the first key\'s direction', () => {
    expect(normalizeSort(undefined)).toEqual([{ key: 'created_at', dir: 'desc' }, { key: 'id', dir: 'desc' }]);
    expect(normalizeSort([{ key: 'name', dir: 'asc' }])).toEqual([
      { key: 'name', dir: 'asc' },
      { key: 'created_at', dir: 'asc' },
      { key: 'id', dir: 'asc' },
    ]);
  });

  it('serves created_at and name orders, and a name filter from the name index', () => {
    expect(planList({}).order).toEqual({ by: 'created_at', dir: 'desc' });
    expect(planList({ sort: [{ key: 'name', dir: 'desc' }], filter: { projectId: 'p' } })).toMatchObject({ order: { by: 'name', dir: 'desc' }, projectId: 'p' });
    expect(planList({ sort: [{ key: 'created_at', dir: 'asc' }, { key: 'id', dir: 'asc' }, { key: 'name', dir: 'desc' }] }).order).toEqual({ by: 'created_at', dir: 'asc' });
    expect(planList({ filter: { name: 'x' } }).order).toEqual({ by: 'name', dir: 'desc' });
    expect(planList({ filter: { status: 'error' } })).toMatchObject({ status: 'error', order: { by: 'created_at' } });
  });

  it('refuses what no index serves, as bad input', () => {
    for (const query of [
      { sort: [{ key: 'size', dir: 'asc' as const }] },
      { sort: [{ key: 'updated_at', dir: 'desc' as const }] },
      { sort: [{ key: 'created_at', dir: 'asc' as const }, { key: 'id', dir: 'desc' as const }] },
      { sort: [{ key: 'name', dir: 'asc' as const }], filter: { status: 'error' } },
      { filter: { name: 'x', status: 'error' } },
    ]) {
      expect(() => planList(query)).toThrow(InvalidInputError);
    }
    // A volume's snapshots are few: any filter combines with them.
    expect(planList({ sort: [{ key: 'name', dir: 'asc' }], filter: { status: 'error', volumeId: 'v' } }).volumeId).toBe('v');
  });

  it('caps the limit and counts only when asked', () => {
    expect(planList({ limit: 5_000 }).limit).toBe(MAX_LIST_LIMIT);
    expect(planList({}).limit).toBe(MAX_LIST_LIMIT);
    expect(planList({}).withCount).toBe(false);
    expect(planList({ withCount: true }).withCount).toBe(true);
  });

  it('encodes index keys whose byte order is the listing order, for every order', () => {
    const names = [null, '', 'a', 'ab', 'a/b', 'b', 'B', 'é', '日本', '\u{1F600}', 'a~', 'a!', 'zz'];
    const ids = ['1', '10', '2', 'a', 'a-b', 'ff', '\u00ff'];
    const records: ResourceRecord[] = [];
    let n = 0;
    for (const name of names) for (const id of ids) records.push({ id: `${id}.${n}`, name, created_at: 1_000 + (n++ % 4) } as ResourceRecord);
    for (const order of INDEX_ORDERS) {
      const byRecords = [...records].sort((a, b) => compareInOrder(a, b, order)).map((r) => `${r.id}|${r.name}|${r.created_at}`);
      const byKeys = [...records]
        .sort((a, b) => Buffer.compare(Buffer.from(sortableKey(a, order)), Buffer.from(sortableKey(b, order))))
        .map((r) => `${r.id}|${r.name}|${r.created_at}`);
      expect(byKeys, `${order.by} ${order.dir}`).toEqual(byRecords);
    }
  });
});
