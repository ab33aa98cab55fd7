import { describe, expect, it } from 'vitest';
import { HA_FAULTS, isHaFault } from '../../chaos/ha-faults.js';
import { type FaultMeasure, type FaultRecord, faultRows, formatMeasures, measureFault } from '../../chaos/measure.js';
import { overlapPlan } from '../../chaos/overlap.js';
import { schedule, seeded } from '../../chaos/scenario.js';

const record = (over: Partial<FaultRecord> = {}): FaultRecord => ({
  mark: { kind: 'etcd-leader-kill', target: 'etcd-0 (leader)', startedAt: 10_000, endedAt: 14_000, readyAt: 15_000 },
  recoveredAt: 14_000,
  samples: [
    { at: 10_000, notReady: [] },
    { at: 12_000, notReady: ['w1'] },
    { at: 15_500, notReady: [] },
    { at: 16_000, notReady: [] },
  ],
  endedHosts: ['w2'],
  ...over,
});

const measure = (over: Partial<FaultMeasure> = {}): FaultMeasure => ({
  kind: 'etcd-member-kill',
  label: 'kill -9 etcd-1',
  stallMs: 1_000,
  incarnationsEnded: 0,
  refused: 0,
  readyAfterMs: 0,
  notReadyMs: 0,
  readyAgain: true,
  ...over,
});

describe('measureFault', () => {
  it('measures the stall, the incarnations ended, the refusals in its window and the time to ready after recovery', () => {
    const m = measureFault(record(), [9_000, 11_000, 13_500, 20_000], [9_999, 10_500, 15_900, 30_000], 40_000);
    expect(m).toMatchObject({ kind: 'etcd-leader-kill', label: 'kill -9 etcd-0 (leader)', stallMs: 6_500, incarnationsEnded: 1, refused: 2, readyAfterMs: 1_500, notReadyMs: 3_500, readyAgain: true });
    expect(m.overlap).toBeUndefined();
  });

  it('counts no time to ready when no process went not ready, and says when the polls never saw them ready again', () => {
    expect(measureFault(record({ samples: [{ at: 10_000, notReady: [] }, { at: 16_000, notReady: [] }] }), [], [], 20_000).readyAfterMs).toBe(0);
    const unrecovered = { kind: 'etcd-leader-kill', target: 'etcd-0 (leader)', startedAt: 10_000, endedAt: 14_000 } as const;
    const stuck = measureFault(record({ mark: unrecovered, samples: [{ at: 10_000, notReady: [] }, { at: 16_000, notReady: ['w1'] }], overlap: 'kill -9 w1 (2 ops)' }), [], [], 20_000);
    expect(stuck).toMatchObject({ readyAgain: false, overlap: 'kill -9 w1 (2 ops)' });
    // The recovery saw every process ready (readyAt); a last poll that missed on a loaded machine does not undo it.
    const missedPoll = measureFault(record({ samples: [{ at: 10_000, notReady: [] }, { at: 16_000, notReady: ['api'] }] }), [], [], 20_000);
    expect(missedPoll.readyAgain).toBe(true);
  });

  it('leaves the overlap’s own victim out of the readiness (its restart is the overlap’s cost)', () => {
    const samples = [
      { at: 10_000, notReady: [] },
      { at: 12_000, notReady: ['w3'] },
      { at: 18_000, notReady: [] },
    ];
    expect(measureFault(record({ samples, victim: 'w3', overlap: 'kill -9 w3 (1 ops)' }), [], [], 20_000)).toMatchObject({ readyAfterMs: 0, notReadyMs: 0 });
    expect(measureFault(record({ samples }), [], [], 20_000)).toMatchObject({ readyAfterMs: 4_000, notReadyMs: 6_000 });
  });

  it('counts the time to ready from the recovery (an election after the fault), never below 0', () => {
    expect(measureFault(record({ recoveredAt: 15_400 }), [], [], 20_000).readyAfterMs).toBe(100);
    expect(measureFault(record({ recoveredAt: 17_000 }), [], [], 20_000).readyAfterMs).toBe(0);
  });
});

describe('formatMeasures, faultRows', () => {
  it('prints one line per kind with the issue’s goal, met or missed', () => {
    const text = formatMeasures([measure(), measure({ stallMs: 3_500, overlap: 'kill -9 w1' }), measure({ kind: 'rabbit-leader-kill', label: 'kill -9 rabbit-0', stallMs: 6_000 })]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    // The overlapped instance's stall does not count against the goal; its refusals would.
    expect(lines[2]).toMatch(/^etcd-member-kill .*\| 2 \(1\) .*1\.0 \/ 1\.0 \(3\.5\).*stall ≤ 3 s: met/);
    expect(lines[3]).toMatch(/^rabbit-leader-kill .*stall ≤ 5 s: MISSED/);
    expect(formatMeasures([measure({ incarnationsEnded: 1 })])).toContain('MISSED');
  });

  it('has a row per scheduled kind: it fails when a fault did not happen as often as scheduled or a process stayed not ready', () => {
    const rows = faultRows([measure(), measure({ kind: 'etcd-quorum-loss', readyAgain: false })], { 'etcd-member-kill': 1, 'etcd-quorum-loss': 1, 'rabbit-freeze': 2, 'rabbit-partition': 0 });
    expect(rows.map((r) => [r.name.split(':')[0], r.result])).toEqual([
      ['fault etcd-member-kill', 'PASS'],
      ['fault etcd-quorum-loss', 'FAIL'],
      ['fault rabbit-freeze', 'FAIL'],
    ]);
  });
});

describe('the ha schedule', () => {
  it('schedules each HA fault as often as asked, and plans overlaps on HA faults only, freezes only with RabbitMQ faults', () => {
    const haFaults = Object.fromEntries(HA_FAULTS.map((k) => [k, 2]));
    const s = schedule({ kills: 16, zombies: 2, refusedFences: 1, partitions: 0, brokerRestarts: 0, etcdRestarts: 0, haFaults }, seeded(3));
    expect(s[0]).toBe('kill');
    for (const k of HA_FAULTS) expect(s.filter((f) => f === k)).toHaveLength(2);
    expect(s).toHaveLength(16 + 2 + 1 + 16);
    const plan = overlapPlan(s, 8, seeded(4));
    expect(plan.size).toBe(8);
    for (const [i, what] of plan) {
      expect(isHaFault(s[i]!)).toBe(true);
      if (what === 'zombie') expect(s[i]).toMatch(/^rabbit-/);
    }
    expect(overlapPlan(s, 8, seeded(4))).toEqual(plan);
    expect([...overlapPlan(s, ['etcd-quorum-loss'], seeded(1))]).toEqual([[s.indexOf('etcd-quorum-loss'), 'kill']]);
  });
});
