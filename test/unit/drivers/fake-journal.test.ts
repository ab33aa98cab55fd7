import { describe, expect, it } from 'vitest';
import { checkJournal, formatJournalEntry, type JournalEntry, parseJournal } from '../../../src/drivers/fake-journal.js';
import type { DriverCall } from '../../../src/drivers/volume-driver.js';

/** A call of member `m` (pid derived from it) from `start` to `end` (no end line when undefined). */
function call(m: string, seq: number, c: DriverCall, resource: string, opId: string, start: number, end?: number, ok = true): JournalEntry[] {
  const pid = 1000 + m.charCodeAt(0);
  const base = { call: c, resource, opId, member: `${m}@be`, pid, seq };
  const lines: JournalEntry[] = [{ ...base, event: 'start', t: start }];
  if (end !== undefined) lines.push({ ...base, event: 'end', ok, t: end });
  return lines;
}

/** A copy's lines: a call that also names its source. */
function copy(m: string, seq: number, c: DriverCall, resource: string, source: string, opId: string, start: number, end?: number): JournalEntry[] {
  return call(m, seq, c, resource, opId, start, end).map((e) => ({ ...e, source }));
}

describe('journal checker', () => {
  it('reports a delete of a source while a copy of it ran, and only then (no source deleted under a running copy)', () => {
    const report = checkJournal([
      ...copy('a', 1, 'createClonedVolume', 'volume:c1', 'volume:v1', 'op1', 0, 10),
      ...copy('b', 1, 'createClonedVolume', 'volume:c2', 'volume:v1', 'op2', 2, 8),
      ...copy('a', 2, 'createVolumeFromSnapshot', 'volume:c3', 'snapshot:s1', 'op3', 0, 30),
      ...call('c', 1, 'deleteVolume', 'volume:v1', 'op4', 10, 12),
      ...call('c', 2, 'deleteSnapshot', 'snapshot:s1', 'op5', 20, 21),
    ]);
    expect(report.ok).toBe(false);
    expect(report.sourceDeletions).toHaveLength(1);
    expect(report.sourceDeletions[0]).toMatchObject({ copy: { opId: 'op3', source: 'snapshot:s1' }, deletion: { opId: 'op5' } });
    // A copy that never ended lasts until its process last wrote.
    const unfinished = checkJournal([...copy('a', 1, 'createClonedVolume', 'volume:c1', 'volume:v1', 'op1', 0), ...call('a', 2, 'createVolume', 'volume:x', 'op2', 50, 60), ...call('b', 1, 'deleteVolume', 'volume:v1', 'op3', 55, 56)]);
    expect(unfinished.sourceDeletions).toHaveLength(1);
    expect(parseJournal(copy('a', 1, 'createClonedVolume', 'volume:c1', 'volume:v1', 'op1', 0, 1).map(formatJournalEntry).join('')).entries[0]).toMatchObject({ source: 'volume:v1' });
  });

  it('passes a clean journal and counts calls per member', () => {
    const report = checkJournal([
      ...call('a', 1, 'createVolume', 'volume:v1', 'op1', 0, 10),
      ...call('b', 1, 'extendVolume', 'volume:v1', 'op2', 10, 20),
      ...call('a', 2, 'createSnapshot', 'snapshot:s1', 'op3', 5, 15),
      ...call('c', 1, 'deleteVolume', 'volume:v1', 'op4', 25, 30),
    ]);
    expect(report.ok).toBe(true);
    expect(report.overlaps).toEqual([]);
    expect(report.byMember).toEqual({ 'a@be': 2, 'b@be': 1, 'c@be': 1 });
  });

  it('reports calls on one resource that overlap in time, and only those', () => {
    const report = checkJournal([
      ...call('a', 1, 'extendVolume', 'volume:v1', 'op1', 0, 10),
      ...call('b', 1, 'deleteVolume', 'volume:v1', 'op2', 9, 12),
      ...call('c', 1, 'extendVolume', 'volume:v2', 'op3', 0, 100),
      ...call('c', 2, 'extendVolume', 'volume:v3', 'op4', 12, 13),
    ]);
    expect(report.ok).toBe(false);
    expect(report.overlaps).toHaveLength(1);
    expect(report.overlaps[0]).toMatchObject({ resource: 'volume:v1', first: { member: 'a@be', opId: 'op1' }, second: { member: 'b@be', opId: 'op2' } });
  });

  it('finds every pair when several calls pile up on one resource', () => {
    const report = checkJournal([
      ...call('a', 1, 'extendVolume', 'volume:v1', 'op1', 0, 50),
      ...call('b', 1, 'extendVolume', 'volume:v1', 'op2', 10, 20),
      ...call('c', 1, 'extendVolume', 'volume:v1', 'op3', 15, 60),
    ]);
    expect(report.overlaps.map((o) => `${o.first.opId}+${o.second.opId}`)).toEqual(['op1+op2', 'op1+op3', 'op2+op3']);
  });

  it('reports a create that ran to success twice for one volume, even under two opIds', () => {
    const report = checkJournal([
      ...call('a', 1, 'createVolume', 'volume:v1', 'op1', 0, 10),
      ...call('b', 1, 'createVolume', 'volume:v1', 'op1-retry', 20, 30),
      ...call('a', 2, 'createVolume', 'volume:v2', 'op2', 0, 10, false),
      ...call('b', 2, 'createVolume', 'volume:v2', 'op2', 20, 30),
    ]);
    expect(report.duplicates).toHaveLength(1);
    expect(report.duplicates[0]).toMatchObject({ call: 'createVolume', resource: 'volume:v1' });
    expect(report.duplicates[0]?.calls.map((c) => c.member)).toEqual(['a@be', 'b@be']);
  });

  it('lets a volume be extended twice by two operations, but not twice by one', () => {
    const twoOps = checkJournal([
      ...call('a', 1, 'extendVolume', 'volume:v1', 'op1', 0, 10),
      ...call('a', 2, 'extendVolume', 'volume:v1', 'op2', 20, 30),
    ]);
    expect(twoOps.duplicates).toEqual([]);
    const oneOp = checkJournal([
      ...call('a', 1, 'extendVolume', 'volume:v1', 'op1', 0, 10),
      ...call('b', 1, 'extendVolume', 'volume:v1', 'op1', 20, 30),
    ]);
    expect(oneOp.duplicates).toHaveLength(1);
  });

  it('reports calls that never ended, lasting until their process last wrote', () => {
    const report = checkJournal([
      ...call('a', 1, 'deleteVolume', 'volume:v1', 'op1', 0),
      ...call('a', 2, 'extendVolume', 'volume:v9', 'op9', 5, 8),
      ...call('b', 1, 'deleteVolume', 'volume:v1', 'op1', 7, 9),
      ...call('c', 1, 'deleteVolume', 'volume:v1', 'op1', 20, 21),
    ]);
    expect(report.unfinished).toHaveLength(1);
    expect(report.unfinished[0]).toMatchObject({ member: 'a@be', resource: 'volume:v1' });
    // a was last seen at t=8: b (from 7) overlaps it, c (from 20) does not.
    expect(report.overlaps.map((o) => o.second.member)).toEqual(['b@be']);
    expect(report.ok).toBe(false);
  });

  it('counts torn or foreign lines as malformed and still reads the rest', () => {
    const good = [...call('a', 1, 'createVolume', 'volume:v1', 'op1', 0, 1)].map(formatJournalEntry).join('');
    const text = `${good}{"call":"createVolume","resou\nnot json at all\n{"call":"formatDisk","resource":"x"}\n\n`;
    const { entries, malformed } = parseJournal(text);
    expect(entries).toHaveLength(2);
    expect(malformed).toHaveLength(3);
    const report = checkJournal(entries, malformed.length);
    expect(report.malformed).toBe(3);
    expect(report.ok).toBe(false);
  });

  it('pairs start and end by process and sequence, whatever order the lines are in', () => {
    const lines = [
      ...call('a', 2, 'createVolume', 'volume:v2', 'op2', 3, 4),
      ...call('a', 1, 'createVolume', 'volume:v1', 'op1', 0, 10),
    ].reverse();
    const report = checkJournal(lines);
    expect(report.calls.map((c) => [c.opId, c.start, c.end])).toEqual([
      ['op1', 0, 10],
      ['op2', 3, 4],
    ]);
    expect(report.ok).toBe(true);
  });
});
