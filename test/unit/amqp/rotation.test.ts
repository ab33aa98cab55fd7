import { describe, expect, it } from 'vitest';
import { BrokerRotation, brokerTargets, startIndexFor } from '../../../src/amqp/rotation.js';

describe('BrokerRotation', () => {
  it('moves to the next node at once after a failure, and waits only after a whole round failed', () => {
    const r = new BrokerRotation(3, 1);
    expect(r.next).toBe(1);
    expect(r.failed()).toBe(0);
    expect(r.next).toBe(2);
    expect(r.failed()).toBe(0);
    expect(r.next).toBe(0);
    expect(r.failed()).toBe(1); // the round 1, 2, 0 failed: wait backoff(1)
    expect(r.next).toBe(1);
    for (let i = 0; i < 2; i++) expect(r.failed()).toBe(0);
    expect(r.failed()).toBe(2); // a second round in a row: backoff(2)
  });

  it('after a lost connection starts a new round at the node after it, the lost one last', () => {
    const r = new BrokerRotation(3, 0);
    r.failed(); // 0 is down
    r.succeeded(); // connected to 1
    expect(r.next).toBe(1);
    r.lost();
    expect(r.next).toBe(2);
    expect(r.failed()).toBe(0);
    expect(r.next).toBe(0);
    expect(r.failed()).toBe(0);
    expect(r.next).toBe(1);
    expect(r.failed()).toBe(1); // the round counts from the loss, and the back-off from 1 again
  });

  it('with one node waits after every failure, and retries at once after a loss (the single-URL loop)', () => {
    const r = new BrokerRotation(1);
    expect(r.failed()).toBe(1);
    expect(r.failed()).toBe(2);
    r.succeeded();
    r.lost();
    expect(r.next).toBe(0);
    expect(r.failed()).toBe(1);
  });

  it('refuses an empty list', () => {
    expect(() => new BrokerRotation(0)).toThrow(RangeError);
  });
});

describe('brokerTargets and startIndexFor', () => {
  it('label every node host:port, never with its credentials', () => {
    const targets = brokerTargets('amqp://u:secret@r0/v,amqp://u:secret@r1:5673/v');
    expect(targets.map((t) => t.node)).toEqual(['r0:5672', 'r1:5673']);
    expect(targets.map((t) => t.index)).toEqual([0, 1]);
    expect(JSON.stringify(targets.map((t) => t.node))).not.toContain('secret');
  });

  it('start each host on a stable node, spread across hosts', () => {
    expect(startIndexFor('hearth w1@be', 1)).toBe(0);
    expect(startIndexFor('hearth w1@be', 3)).toBe(startIndexFor('hearth w1@be', 3));
    const used = new Set(Array.from({ length: 30 }, (_, i) => startIndexFor(`hearth w${i}@be`, 3)));
    expect(used).toEqual(new Set([0, 1, 2]));
  });
});
