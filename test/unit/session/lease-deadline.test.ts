import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors.js';
import { LeaseDeadline, leaseTiming } from '../../../src/session/lease-deadline.js';

// TTL 9 s, margin 2 s: keepalive every 3 s, a keepalive unanswered for 1.5 s is missed.
const timing = leaseTiming({ leaseTtlMs: 9_000, leaseMarginMs: 2_000, callTimeoutMs: 3_000 });

describe('leaseTiming', () => {
  it('derives the keepalive interval (TTL/3) and the answer timeout (min of call timeout, interval/2)', () => {
    expect(timing).toEqual({ ttlMs: 9_000, marginMs: 2_000, keepaliveIntervalMs: 3_000, answerTimeoutMs: 1_500 });
    expect(leaseTiming({ leaseTtlMs: 30_000, leaseMarginMs: 2_000, callTimeoutMs: 1_000 }).answerTimeoutMs).toBe(1_000);
  });

  it('requires whole seconds (etcd lease TTLs are) and a margin of at most TTL/3', () => {
    expect(() => leaseTiming({ leaseTtlMs: 2_500, leaseMarginMs: 500, callTimeoutMs: 1_000 })).toThrow(InvalidInputError);
    expect(() => leaseTiming({ leaseTtlMs: 500, leaseMarginMs: 100, callTimeoutMs: 1_000 })).toThrow(/whole number of seconds/);
    expect(() => leaseTiming({ leaseTtlMs: 3_000, leaseMarginMs: 1_001, callTimeoutMs: 1_000 })).toThrow(/third/);
    expect(() => leaseTiming({ leaseTtlMs: 3_000, leaseMarginMs: 0, callTimeoutMs: 1_000 })).toThrow(/positive/);
  });
});

describe('LeaseDeadline', () => {
  it('is safe until the grant send time + TTL − margin, and lost from then on', () => {
    const lease = new LeaseDeadline(timing, 1_000, 9);
    expect(lease.safeUntil).toBe(8_000);
    expect(lease.evaluate(7_999)).toBe('jeopardy'); // no acknowledgement since the grant: overdue at 5 500
    expect(lease.evaluate(8_000)).toBe('lost');
  });

  it('moves safeUntil with the send time (not the receive time) of each acknowledged keepalive', () => {
    const lease = new LeaseDeadline(timing, 0, 9);
    expect(lease.acknowledged(3_000, 9, 3_900)).toBe('held');
    expect(lease.safeUntil).toBe(3_000 + 9_000 - 2_000);
    // An older acknowledgement never moves it back.
    expect(lease.acknowledged(2_000, 9, 3_950)).toBe('held');
    expect(lease.safeUntil).toBe(10_000);
  });

  it('goes to jeopardy on a missed keepalive and back to held on the next acknowledgement', () => {
    const lease = new LeaseDeadline(timing, 0, 9);
    expect(lease.missed(3_100)).toBe('jeopardy');
    expect(lease.acknowledged(6_000, 9, 6_010)).toBe('held');
    expect(lease.safeUntil).toBe(13_000);
  });

  it('goes to jeopardy by the clock alone when an acknowledgement is overdue (stalled loop sent nothing)', () => {
    const lease = new LeaseDeadline(timing, 0, 9);
    expect(lease.evaluate(4_499)).toBe('held');
    expect(lease.evaluate(4_500)).toBe('jeopardy'); // interval 3 000 + answer timeout 1 500
  });

  it('is lost for good: a late acknowledgement (e.g. after a blocked event loop) does not revive it', () => {
    const lease = new LeaseDeadline(timing, 0, 9);
    // The answer to a keepalive sent at 3 000 is processed only at 7 500 (loop blocked).
    expect(lease.acknowledged(3_000, 9, 7_500)).toBe('lost');
    expect(lease.acknowledged(7_400, 9, 7_600)).toBe('lost');
    expect(lease.evaluate(7_700)).toBe('lost');
  });

  it('is lost at once when etcd answers TTL 0 (lease expired or revoked)', () => {
    const lease = new LeaseDeadline(timing, 0, 9);
    expect(lease.acknowledged(3_000, 0, 3_001)).toBe('lost');
  });

  it('never trusts a TTL longer than requested, and honours a shorter one', () => {
    const longer = new LeaseDeadline(timing, 0, 60);
    expect(longer.safeUntil).toBe(7_000);
    const shorter = new LeaseDeadline(timing, 0, 5);
    expect(shorter.safeUntil).toBe(3_000);
  });
});
