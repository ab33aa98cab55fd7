// The pure parts of the etcd client's member failover: how a failure is read, which calls may be
// sent again, and which member a call avoids.
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { classifyFailure, EndpointHealth, isReadOnly } from '../../../src/etcd/failover.js';

describe('classifyFailure', () => {
  it('a member that could not be reached never took the call', () => {
    expect(classifyFailure(new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379'))).toEqual({
      memberDown: true,
      notApplied: true,
      result: 'unavailable',
    });
  });

  it('a member without a leader refused it; a dropped connection or a deadline leaves the outcome unknown', () => {
    expect(classifyFailure(new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: no leader'))).toEqual({ memberDown: true, notApplied: true, result: 'no_leader' });
    expect(classifyFailure(new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'))).toEqual({ memberDown: true, notApplied: false, result: 'unavailable' });
    expect(classifyFailure(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded'))).toEqual({ memberDown: true, notApplied: false, result: 'deadline' });
  });

  it('an answer of a working member says nothing about the member', () => {
    expect(classifyFailure(new Error('etcdserver: requested lease not found'))).toEqual({ memberDown: false, notApplied: false, result: 'error' });
    expect(classifyFailure(new Error('etcdserver: too many requests'))).toMatchObject({ memberDown: false, notApplied: true });
  });
});

describe('isReadOnly', () => {
  it('reads, and transactions of ranges only, may be sent again; writes may not', () => {
    expect(isReadOnly('range', {})).toBe(true);
    expect(isReadOnly('leaseTimeToLive', {})).toBe(true);
    expect(isReadOnly('leaseRevoke', {})).toBe(true);
    expect(isReadOnly('txn', { compare: [], success: [{ request_range: { key: 'a' } }, { request_range: { key: 'b' } }], failure: [] })).toBe(true);
    expect(isReadOnly('txn', { compare: [{}], success: [{ request_range: { key: 'a' } }, { request_put: { key: 'a' } }] })).toBe(false);
    expect(isReadOnly('txn', { success: [], failure: [{ request_delete_range: { key: 'a' } }] })).toBe(false);
    for (const write of ['put', 'deleteRange', 'leaseGrant', 'compact']) expect(isReadOnly(write, {})).toBe(false);
  });
});

describe('EndpointHealth', () => {
  it('avoids a member that failed while another is healthy, for a while; never all at once', () => {
    let now = 0;
    const health = new EndpointHealth(['a:1', 'b:1', 'c:1'], 2_000, () => now);
    expect(health.skip('a:1')).toBe(false);
    health.down('a:1');
    expect(health.skip('a:1')).toBe(true);
    health.down('b:1');
    health.down('c:1');
    // Every member failed moments ago: none is skipped (one may be back).
    expect(['a:1', 'b:1', 'c:1'].map((e) => health.skip(e))).toEqual([false, false, false]);
    health.up('b:1');
    expect(health.skip('a:1')).toBe(true);
    now = 2_000;
    expect(health.skip('a:1')).toBe(false);
    expect(health.healthy('c:1')).toBe(true);
  });
});

describe('EndpointHealth with the members a call already tried', () => {
  it('skips an unhealthy member only for an untried healthy one', () => {
    const health = new EndpointHealth(['a:1', 'b:1', 'c:1'], 2_000, () => 0);
    health.down('a:1');
    expect(health.skip('a:1', new Set())).toBe(true);
    // b and c already failed this call: a is the one left to try.
    expect(health.skip('a:1', new Set(['b:1', 'c:1']))).toBe(false);
    expect(health.skip('a:1', new Set(['b:1']))).toBe(true);
  });
});
