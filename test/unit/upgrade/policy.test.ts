import { describe, expect, it } from 'vitest';
import { highestCommon, type ProtocolSupport, skewProblem } from '../../../src/protocol.js';
import { finalizeCheck, mixedSince, negotiateMessages, startProblems, workerMessageVersion } from '../../../src/upgrade/policy.js';
import type { LiveProcess, SchemaState } from '../../../src/upgrade/records.js';

/** Release N reads and writes versions N−1 and N (release 1: just 1). */
function release(n: number): ProtocolSupport {
  const range = { min: Math.max(1, n - 1), max: n };
  return { messages: range, schema: range };
}

let pid = 100;
function live(n: number, over: Partial<LiveProcess> = {}): LiveProcess {
  pid++;
  return {
    ...release(n),
    id: `node${pid}@rbd/${pid.toString(16)}`,
    host: `node${pid}@rbd`,
    cluster: 'ceph@rbd',
    roles: ['worker'],
    build: `0.${n}.0`,
    revision: 'abc',
    pid,
    startedAtMs: pid * 1_000,
    since: String(pid),
    ...over,
  };
}

const schema = (version: number, migration: SchemaState['migration'] = null): SchemaState => ({ version, finalizedAtMs: null, finalizedBy: null, migration, revision: '5' });

describe('message negotiation', () => {
  it('writes the highest version every live process of the cluster reads, and names who pins it', () => {
    const old = live(1);
    const processes = [live(2), old, live(2, { roles: ['api'] })];
    expect(negotiateMessages(release(2).messages, processes, 'ceph@rbd')).toEqual({ version: 1, pinnedBy: [old] });
    // The old process leaves: nothing pins any more.
    expect(negotiateMessages(release(2).messages, processes.filter((p) => p !== old), 'ceph@rbd')).toEqual({ version: 2, pinnedBy: [] });
  });

  it('counts API-only processes as readers (they run cleaners and sweepers too), workers alone for the API gate', () => {
    const processes = [live(2), live(1, { roles: ['api'] })];
    expect(negotiateMessages(release(2).messages, processes, 'ceph@rbd').version).toBe(1);
    expect(workerMessageVersion(release(2).messages, processes, 'ceph@rbd')).toBe(2);
    expect(workerMessageVersion(release(2).messages, [live(1), live(2)], 'ceph@rbd')).toBe(1);
  });

  it('a host-directed message follows that host’s workers; other clusters do not pin', () => {
    const target = live(2, { host: 'n9@rbd' });
    const processes = [target, live(1), live(1, { cluster: 'other@lvm' })];
    expect(negotiateMessages(release(2).messages, processes, 'ceph@rbd', 'n9@rbd').version).toBe(2);
    expect(negotiateMessages(release(2).messages, processes, 'ceph@rbd').version).toBe(1);
    expect(negotiateMessages(release(2).messages, [live(1, { cluster: 'other@lvm' })], 'ceph@rbd').version).toBe(1);
    expect(negotiateMessages(release(2).messages, [], 'ceph@rbd').version).toBe(2);
  });

  it('has no common version across more than one release (the skew policy)', () => {
    expect(highestCommon(release(3).messages, [release(1).messages])).toBeUndefined();
    expect(skewProblem(release(3), release(1))).toMatch(/more than one apart/);
    expect(skewProblem(release(2), release(1))).toBeUndefined();
  });
});

describe('start-up check', () => {
  it('refuses a build whose range misses the cluster’s schema, naming both', () => {
    const [problem] = startProblems(release(1), '0.1.0', schema(2), []);
    expect(problem).toMatch(/record schema is 2, and this build \(hearth 0\.1\.0\) reads and writes schemas 1/);
    expect(startProblems(release(3), '0.3.0', schema(1), [])[0]).toMatch(/upgrade to the release in between first/);
    expect(startProblems(release(2), '0.2.0', schema(1), [live(1)])).toEqual([]);
  });

  it('refuses a build more than one release from a live process', () => {
    const old = live(1);
    expect(startProblems(release(3), '0.3.0', schema(2), [old])).toEqual([expect.stringContaining(`process ${old.id} (hearth 0.1.0) is alive`)]);
  });

  it('refuses a build that cannot read records an unfinished migration leaves behind', () => {
    const running = { from: 1, to: 2, done: false, cursor: null, migrated: 0, passes: 0, passRewritten: 0, passUnreadable: 0, passUnreadableKeys: [], blockedBy: null, startedAtMs: 0, updatedAtMs: 0, completedAtMs: null };
    expect(startProblems(release(3), '0.3.0', schema(2, running), [])[0]).toMatch(/data migration to record schema 2 has not finished/);
    expect(startProblems(release(3), '0.3.0', schema(2, { ...running, done: true }), [])).toEqual([]);
  });
});

describe('finalize check', () => {
  it('names every live process that could not read the next schema', () => {
    const old = live(1, { roles: ['api'] });
    const check = finalizeCheck(release(2), schema(1), [live(2), old]);
    expect(check.target).toBe(2);
    expect(check.blockedBy).toEqual([old]);
    expect(check.reasons).toEqual([expect.stringContaining(`process ${old.id} (hearth 0.1.0, api) reads schemas 1`)]);
    expect(finalizeCheck(release(2), schema(1), [live(2)]).reasons).toEqual([]);
  });

  it('moves one step at a time, never beyond this build, never over a running migration', () => {
    expect(finalizeCheck(release(1), schema(1), []).reasons).toEqual([expect.stringContaining('cannot write schema 2')]);
    expect(finalizeCheck(release(3), schema(1), [], 3).reasons).toContainEqual(expect.stringContaining('one version at a time'));
    const running = { from: 1, to: 2, done: false, cursor: 'x', migrated: 1, passes: 0, passRewritten: 1, passUnreadable: 0, passUnreadableKeys: [], blockedBy: null, startedAtMs: 0, updatedAtMs: 0, completedAtMs: null };
    expect(finalizeCheck(release(3), schema(2, running), []).reasons).toContainEqual(expect.stringContaining('has not finished'));
  });
});

describe('mixed releases', () => {
  it('since the first process of the release that joined last; null with one release', () => {
    expect(mixedSince([live(1, { startedAtMs: 10 }), live(1, { startedAtMs: 5 })])).toBeNull();
    expect(mixedSince([live(1, { startedAtMs: 10 }), live(2, { startedAtMs: 50 }), live(2, { startedAtMs: 40 })])).toBe(40);
  });
});
