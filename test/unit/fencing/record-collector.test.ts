// Garbage collection of incarnation records over the single-node membership (a real file) and a
// manual clock: what goes, what stays, and why.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expiredIncarnations, RecordCollector } from '../../../src/fencing/record-collector.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

const HOUR_MS = 3_600_000;

async function setup() {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const membership = new LocalMembership(await LocalRecordFile.open(join(await mkdtemp(join(tmpdir(), 'hearth-gc-')), 'membership.json')), clock);
  const join1 = (host: string) => membership.join({ identity: { cluster: 'c1@be', host, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session: TestSession.local(host) });
  return { clock, membership, join1 };
}

describe('RecordCollector', () => {
  it('removes the records of an incarnation ended longer ago than the retention, unless an operation names it; keeps the awaiting and the alive', async () => {
    const { clock, membership, join1 } = await setup();
    const left = await join1('a@be');
    await left.leave({ clean: true });
    const referenced = await join1('a@be');
    await referenced.leave({ clean: true });
    const dead = await join1('a@be');
    await dead.leave(); // no end on record: awaiting its fence
    const alive = await join1('a@be');
    await clock.advance(HOUR_MS - 1);
    const collector = new RecordCollector({
      membership,
      referenced: async (inc) => inc === referenced.owner.incarnation,
      clock,
      logger: silentLogger(),
      retentionMs: HOUR_MS,
      intervalMs: HOUR_MS,
    });
    expect(await collector.collect()).toEqual([]);
    await clock.advance(1);
    expect(await collector.collect()).toEqual([left.owner.incarnation]);
    const view = await membership.incarnation(left.owner.incarnation);
    expect(view.record).toBeUndefined();
    expect(view.end).toBeUndefined();
    for (const kept of [referenced, dead, alive]) expect((await membership.incarnation(kept.owner.incarnation)).record).toBeDefined();
    expect((await membership.incarnation(referenced.owner.incarnation)).end).toMatchObject({ how: 'left' });
    // A second collection finds nothing more to do.
    expect(await collector.collect()).toEqual([]);
    await collector.close();
    await collector.close();
  });

  it('runs by itself every interval once started, and stops on close', async () => {
    const { clock, membership, join1 } = await setup();
    const gone = await join1('a@be');
    await gone.leave({ clean: true });
    const collector = new RecordCollector({ membership, referenced: async () => false, clock, logger: silentLogger(), retentionMs: 60_000, intervalMs: 60_000 });
    collector.start();
    await clock.advance(30_000);
    expect((await membership.incarnation(gone.owner.incarnation)).end).toBeDefined();
    await clock.advance(30_000);
    await waitFor(async () => (await membership.incarnation(gone.owner.incarnation)).end === undefined, { what: 'the collection' });
    await collector.close();
  });
});

describe('expiredIncarnations', () => {
  it('picks ended, not alive, old enough', () => {
    const end = (inc: string, atMs: number) => ({ incarnation: inc, host: 'h', how: 'exec' as const, by: 'x', atMs, detail: '' });
    expect(
      expiredIncarnations(
        [
          { record: undefined, end: end('old', 0), alive: false },
          { record: undefined, end: end('young', 50), alive: false },
          { record: undefined, end: end('self-alive', 0), alive: true },
          { record: undefined, end: undefined, alive: false },
        ],
        100,
        100,
      ),
    ).toEqual(['old']);
  });
});
