// The fair lock's etcd requests and the reading of their answers (src/locks/etcd-lock-ops.ts),
// without etcd: the integration tests run them against a real one.
import type { IKeyValue, ITxnResponse } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { enqueueRequest, holderOf, LockKeys, parseEnqueue, parseRecheck, recheckRequest, releaseRequest } from '../../../src/locks/etcd-lock-ops.js';

const keys = new LockKeys(new KeyLayout('/hearth'), 'vol-1-delete_volume', 'abc');
const PREFIX = '/hearth/locks/vol-1-delete_volume/';

function kv(leaseHex: string, createRevision: string, value = ''): IKeyValue {
  return { key: Buffer.from(`${PREFIX}${leaseHex}`), value: Buffer.from(value), create_revision: createRevision, mod_revision: createRevision, version: '1', lease: '0' };
}

function txn(succeeded: boolean, revision: string, ranges: IKeyValue[][]): ITxnResponse {
  return {
    header: { cluster_id: '1', member_id: '1', revision, raft_term: '1' },
    succeeded,
    responses: ranges.map((kvs) => ({ response_range: { header: undefined as never, kvs, more: false, count: String(kvs.length) } })),
  } as unknown as ITxnResponse;
}

describe('LockKeys', () => {
  it("uses etcd's concurrency layout: <prefix>/locks/<name>/<leaseHex>, the range ending just past the prefix", () => {
    expect(keys.prefix).toBe(PREFIX);
    expect(keys.myKey).toBe(`${PREFIX}abc`);
    expect(keys.rangeEndBuf.toString()).toBe('/hearth/locks/vol-1-delete_volume0');
  });
});

describe('enqueue', () => {
  it('puts my key on my lease only if absent, and reads the owner and the two newest keys, with their values (incarnations)', () => {
    const req = enqueueRequest(keys, '1234', 'n1@be:abc');
    expect(req.compare).toEqual([{ key: keys.myKeyBuf, target: 'Create', result: 'Equal', create_revision: 0 }]);
    expect(req.success?.[0]).toEqual({ request_put: { key: keys.myKeyBuf, value: Buffer.from('n1@be:abc'), lease: '1234' } });
    expect(req.success?.[1]?.request_range).toMatchObject({ sort_target: 'Create', sort_order: 'Ascend', limit: 1 });
    expect(req.success?.[2]?.request_range).toMatchObject({ sort_target: 'Create', sort_order: 'Descend', limit: 2 });
    expect(req.success?.[2]?.request_range).not.toHaveProperty('keys_only');
  });

  it('a fresh key with nothing below it owns the lock', () => {
    const mine = kv('abc', '10', 'n1@be:abc');
    expect(parseEnqueue(keys, txn(true, '10', [[], [mine], [mine]]))).toEqual({
      myRev: '10',
      owner: true,
      holder: { key: `${PREFIX}abc`, leaseHex: 'abc', incarnation: 'n1@be:abc' },
      predecessor: undefined,
      predecessorIsOwner: false,
    });
  });

  it('a fresh key behind the owner waits for the owner itself (no re-read at the hand-off)', () => {
    const owner = kv('0aa', '5', 'n2@be:aa');
    expect(parseEnqueue(keys, txn(true, '10', [[], [owner], [kv('abc', '10'), owner]]))).toMatchObject({
      myRev: '10',
      owner: false,
      holder: { leaseHex: '0aa', incarnation: 'n2@be:aa' },
      predecessor: { key: `${PREFIX}0aa`, createRevision: '5' },
      predecessorIsOwner: true,
    });
  });

  it('a fresh key behind a waiter waits for that waiter, not the owner, and knows its incarnation', () => {
    expect(parseEnqueue(keys, txn(true, '10', [[], [kv('0aa', '5')], [kv('abc', '10'), kv('0bb', '7', 'n2@be:bb')]]))).toMatchObject({
      owner: false,
      predecessor: { createRevision: '7', incarnation: 'n2@be:bb' },
      predecessorIsOwner: false,
    });
  });

  it('an existing key of this session keeps its place: its own revision, owner or not, no predecessor known', () => {
    expect(parseEnqueue(keys, txn(false, '12', [[kv('abc', '9')], [kv('abc', '9')]]))).toMatchObject({ myRev: '9', owner: true, predecessor: undefined });
    expect(parseEnqueue(keys, txn(false, '12', [[kv('abc', '9')], [kv('0aa', '5')]]))).toMatchObject({ myRev: '9', owner: false });
  });
});

describe('recheck and release', () => {
  it('reads my key, the newest key below mine and the owner, both with their values — linearizably, writing nothing', () => {
    const req = recheckRequest(keys, '10');
    expect(req.compare).toEqual([]);
    expect(req.success?.[2]?.request_range).toMatchObject({ sort_order: 'Ascend', limit: 1 });
    expect(req.success?.[2]?.request_range).not.toHaveProperty('keys_only');
    expect(req.success?.[1]?.request_range).toMatchObject({ sort_order: 'Descend', limit: 1, max_create_revision: '9' });
    expect(req.success?.[1]?.request_range).not.toHaveProperty('keys_only');
    expect(req.success?.[1]?.request_range).not.toHaveProperty('serializable');
  });

  it('tells whether my key still exists, who is before me, and whether that is the owner', () => {
    expect(parseRecheck(keys, txn(true, '20', [[kv('abc', '10')], [], [kv('abc', '10', 'n1@be:abc')]]), '10')).toEqual({
      mineExists: true,
      owner: { key: `${PREFIX}abc`, leaseHex: 'abc', incarnation: 'n1@be:abc' },
      predecessor: undefined,
      predecessorIsOwner: false,
    });
    expect(parseRecheck(keys, txn(true, '20', [[kv('abc', '10')], [kv('0aa', '5')], [kv('0aa', '5', 'n2@be:aa')]]), '10')).toMatchObject({ mineExists: true, predecessorIsOwner: true, owner: { incarnation: 'n2@be:aa' } });
    // My key recreated at another revision (lease expired, new acquire): it is not mine any more.
    expect(parseRecheck(keys, txn(true, '20', [[kv('abc', '15')], [], []]), '10')).toMatchObject({ mineExists: false });
  });

  it('deletes my key only while it is still the one created at my revision', () => {
    expect(releaseRequest(keys, '10').compare).toEqual([{ key: keys.myKeyBuf, target: 'Create', result: 'Equal', create_revision: '10' }]);
    expect(releaseRequest(keys, undefined).compare).toEqual([]);
    expect(releaseRequest(keys, '10').success).toEqual([{ request_delete_range: { key: keys.myKeyBuf } }]);
  });

  it('names a holder by its lease and, when hearth wrote it, its incarnation', () => {
    expect(holderOf(keys, kv('0aa', '5'))).toEqual({ key: `${PREFIX}0aa`, leaseHex: '0aa' });
    expect(holderOf(keys, kv('0aa', '5', 'n2@be:aa'))).toEqual({ key: `${PREFIX}0aa`, leaseHex: '0aa', incarnation: 'n2@be:aa' });
  });
});
