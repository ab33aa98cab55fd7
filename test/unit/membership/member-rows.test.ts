import { describe, expect, it } from 'vitest';
import { parseViewQuery } from '../../../src/api/operator-views.js';
import { HttpError } from '../../../src/api/faults.js';
import { leaseHexOf } from '../../../src/membership/lease-ttl.js';
import { buildMemberRows } from '../../../src/membership/member-rows.js';
import type { AliveMember, ServiceRecord } from '../../../src/membership/records.js';

function service(host: string, over: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    id: 1,
    binary: 'cinder-volume',
    host,
    cluster: 'c@be',
    zone: 'nova',
    version: '0.1.0',
    disabled: false,
    disabledReason: null,
    frozen: false,
    replicationStatus: 'not-capable',
    activeBackendId: null,
    createdAtMs: 1_000,
    startedAtMs: 2_000,
    heartbeatAtMs: 3_000,
    modifiedAtMs: null,
    ...over,
  };
}

function alive(host: string, incarnation: string, heartbeatAtMs: number): AliveMember {
  return { host, cluster: 'c@be', incarnation, heartbeatAtMs, aliveRevision: '42' };
}

describe('buildMemberRows', () => {
  it('joins service records and alive entries by host: up with incarnation, live heartbeat and lease; down keeps the last heartbeat', () => {
    const lease = { id: 'abc', grantedTtlS: 10, remainingTtlS: 7 };
    const rows = buildMemberRows(
      { clusters: [], services: [service('b@be'), service('a@be', { disabled: true })], alive: [alive('b@be', 'b@be:abc', 9_000), alive('z@be', 'z@be:def', 8_000)] },
      new Map([['b@be:abc', lease]]),
    );
    expect(rows.map((r) => [r.host, r.up, r.incarnation, r.heartbeatAtMs])).toEqual([
      ['a@be', false, null, 3_000],
      ['b@be', true, 'b@be:abc', 9_000],
      // An alive entry without a service record is still listed as a live member.
      ['z@be', true, 'z@be:def', 8_000],
    ]);
    expect(rows[0]).toMatchObject({ disabled: true, lease: null, aliveRevision: null });
    expect(rows[1]).toMatchObject({ lease, aliveRevision: '42', startedAtMs: 2_000 });
    expect(rows[2]).toMatchObject({ binary: null, lease: null });
  });
});

describe('parseViewQuery and leaseHexOf', () => {
  it('takes the allowed filters (the last of repeated ones) and refuses others or empty ones with 400', () => {
    expect(parseViewQuery({ host: ['a', 'b'], type: 'x' }, ['host', 'type'])).toEqual({ host: 'b', type: 'x' });
    expect(() => parseViewQuery({ nope: '1' }, ['host'])).toThrow(HttpError);
    expect(() => parseViewQuery({ host: '' }, ['host'])).toThrow(/must not be empty/);
  });

  it('reads the lease id of an etcd incarnation, and none from an id without a hex suffix', () => {
    expect(leaseHexOf('w1@be:694d8a1b2c3d4e5f')).toBe('694d8a1b2c3d4e5f');
    expect(leaseHexOf('node@be:zz')).toBeUndefined();
  });
});
