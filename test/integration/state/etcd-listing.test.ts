// The etcd listing indexes on a real etcd: written in the record's own transaction (so no
// revision of etcd's history ever shows a record and its index entries disagree — there is no
// "between two steps" to crash in), built for records written before them, and read a page at a
// time.
import type { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout, prefixEnd } from '../../../src/etcd/keys.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { indexEntries } from '../../../src/state/etcd-listing.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { ResourceRecord, VolumeRecord } from '../../../src/state/records.js';
import { RecordVersions } from '../../../src/state/record-versions.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { newVolume } from '../../contract/state-store.contract.js';

describe('etcd listing indexes', () => {
  let ctx: EtcdTestContext;
  let client: Etcd3;
  let keys: KeyLayout;
  let store: EtcdStateStore;
  let registry: Registry;
  const clock = new ManualClock(1_700_000_000_000);

  beforeAll(() => {
    ctx = useEtcd();
    client = createEtcdClient({ endpoints: ctx.endpoints, prefix: ctx.prefix, username: '', password: '', passwordFile: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 3_000 });
    keys = new KeyLayout(ctx.prefix);
    registry = new Registry();
    store = new EtcdStateStore({ client, keys, clock, metrics: createStateMetrics(registry), logger: silentLogger() });
  });
  afterAll(async () => {
    await store.close();
    client.close();
    await ctx.close();
  });

  /** Every resource record and every index entry under the prefix, as etcd held them at `revision`. */
  async function stateAt(revision: string): Promise<{ records: ResourceRecord[]; entries: Set<string> }> {
    const read = async (prefix: string) => (await client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), revision })).kvs;
    const records = (await read(`${ctx.prefix}/resources/volume/`)).map((kv) => JSON.parse(kv.value.toString()) as ResourceRecord);
    const entries = new Set((await read(`${ctx.prefix}/index/volume/`)).map((kv) => `${kv.key.toString()}=${kv.value.toString()}`));
    return { records, entries };
  }

  function expectedEntries(records: readonly ResourceRecord[]): Set<string> {
    const out = new Set<string>();
    for (const r of records) for (const [key, id] of indexEntries(keys, 'volume', r)) out.add(`${key}=${id}`);
    return out;
  }

  it('at every revision of etcd\'s history, the index entries are exactly those of the records: each write changes both in one transaction', async () => {
    const first = Number((await client.kv.range({ key: Buffer.from(`${ctx.prefix}/`) })).header.revision);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const created = await store.create('volume', { record: newVolume({ name: `n${i}`, project_id: i % 2 ? 'pa' : 'pb' }), op: { kind: 'create_volume' } });
      if (!created.ok) throw new Error('create failed');
      ids.push(created.record.id);
      await clock.advance(1_000);
    }
    for (const id of ids) await store.transition({ type: 'volume', id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
    await store.transition({ type: 'volume', id: ids[0]! }, { expect: { status: 'available' }, set: { name: 'renamed' }, by: 'api' });
    await store.transition({ type: 'volume', id: ids[1]! }, { expect: { status: 'available' }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' });
    await store.remove({ type: 'volume', id: ids[1]! }, { expect: { status: 'deleting' }, by: 'worker' });
    const last = Number((await client.kv.range({ key: Buffer.from(`${ctx.prefix}/`) })).header.revision);
    expect(last - first).toBeGreaterThanOrEqual(11);
    for (let rev = first; rev <= last; rev++) {
      const { records, entries } = await stateAt(String(rev));
      expect(entries, `revision ${rev}`).toEqual(expectedEntries(records));
    }
  });

  it('builds the entries of records written before the indexes, once, and skips an entry whose record no longer sorts there', async () => {
    const versions = new RecordVersions();
    const old: VolumeRecord[] = [];
    for (let i = 0; i < 250; i++) {
      const record = { ...newVolume({ name: `old${String(i).padStart(3, '0')}`, project_id: 'legacy', status: 'available' }), created_at: 1_600_000_000_000 + i, updated_at: null, revision: '0' } as VolumeRecord;
      const { revision: _r, ...body } = record;
      // As a release before the indexes wrote it: the record alone.
      await ctx.client.put(keys.resource('volume', record.id)).value(versions.encode(body));
      old.push(record);
    }
    const listed = async () => (await store.list('volume', { filter: { projectId: 'legacy' }, sort: [{ key: 'name', dir: 'asc' }] })).items.map((v) => v.name);
    expect(await listed()).toEqual([]);
    expect(await store.buildListIndexes()).toBeGreaterThanOrEqual(250);
    expect(await listed()).toEqual(old.map((v) => v.name));
    expect(await store.buildListIndexes()).toBe(0);
    // A release before the indexes changes a record's status: its old entry stays behind, but a
    // status listing never shows the record where it no longer belongs.
    const moved = old[0]!;
    const { revision: _r, ...body } = { ...moved, status: 'error' as const };
    await ctx.client.put(keys.resource('volume', moved.id)).value(versions.encode(body));
    const available = await store.list('volume', { filter: { projectId: 'legacy', status: 'available' }, sort: [{ key: 'created_at', dir: 'asc' }], limit: 10 });
    expect(available.items.map((v) => v.id)).toEqual(old.slice(1, 11).map((v) => v.id));
    expect(available.more).toBe(true);
  });

  it('reads one page: the bytes a page of 10 reads do not grow with the records behind it', async () => {
    const bytesRead = async () => (await registry.getSingleMetric('hearth_etcd_read_bytes_total')!.get()).values.find((v) => v.labels.kind === 'list')?.value ?? 0;
    const pageBytes = async (project: string) => {
      const before = await bytesRead();
      const page = await store.list('volume', { filter: { projectId: project }, limit: 10 });
      expect(page.items).toHaveLength(10);
      return (await bytesRead()) - before;
    };
    for (let i = 0; i < 20; i++) await store.create('volume', { record: newVolume({ project_id: 'small' }), op: { kind: 'create_volume' } });
    for (let i = 0; i < 300; i++) await store.create('volume', { record: newVolume({ project_id: 'large' }), op: { kind: 'create_volume' } });
    const small = await pageBytes('small');
    const large = await pageBytes('large');
    // Same page size, records of the same size: the same bytes, whatever the project holds.
    expect(large).toBe(small);
    const marker = (await store.list('volume', { filter: { projectId: 'large' }, limit: 150 })).items[149]!.id;
    const before = await bytesRead();
    await store.list('volume', { filter: { projectId: 'large' }, limit: 10, marker });
    // A marker costs one read of its record beside the page.
    expect((await bytesRead()) - before).toBeLessThan(small * 1.2);
  });
});
