// Several real processes share one fake-driver journal: their lines never interleave, and the
// journal checker sees overlaps and duplicates exactly when members step on each other.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJournal, parseJournal } from '../../../src/drivers/fake-journal.js';
import { ManagedProcess } from '../../support/process.js';

const REPO = resolve(import.meta.dirname, '../../..');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-journal-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function member(name: string, journal: string, volumes: readonly string[], latencyMs: number, parallel = 4): ManagedProcess {
  return ManagedProcess.start({
    command: process.execPath,
    args: ['--import', 'tsx', 'test/support/children/fake-driver-calls.ts'],
    cwd: REPO,
    logDir: dir,
    name: `${name}-${Date.now()}`,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HEARTH_TEST_JOURNAL: journal,
      HEARTH_TEST_MEMBER: `${name}@be`,
      HEARTH_TEST_VOLUMES: volumes.join(','),
      HEARTH_TEST_LATENCY_MS: String(latencyMs),
      HEARTH_TEST_PARALLEL: String(parallel),
    },
  });
}

async function finished(p: ManagedProcess): Promise<void> {
  const exit = await p.waitForExit();
  if (exit.code !== 0) throw new Error(`member exited ${JSON.stringify(exit)}:\n${p.tail()}`);
}

describe('a fake-driver journal shared by several processes', () => {
  it('holds every line of four busy members intact, and reports nothing when they keep apart', async () => {
    const journal = join(dir, 'apart.jsonl');
    const names = ['m1', 'm2', 'm3', 'm4'];
    const members = names.map((n) => member(n, journal, Array.from({ length: 40 }, (_, i) => `${n}-v${i}`), 1, 8));
    await Promise.all(members.map(finished));
    const { entries, malformed } = parseJournal(await readFile(journal, 'utf8'));
    expect(malformed).toEqual([]);
    expect(entries).toHaveLength(4 * 40 * 5 * 2);
    expect(new Set(entries.map((e) => e.pid)).size).toBe(4);
    const report = checkJournal(entries, malformed.length);
    expect(report.byMember).toEqual({ 'm1@be': 200, 'm2@be': 200, 'm3@be': 200, 'm4@be': 200 });
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    expect(report.unfinished).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('catches members that run the same volume at once: overlapping calls and a create that ran twice', async () => {
    const journal = join(dir, 'clash.jsonl');
    const members = ['x1', 'x2', 'x3'].map((n) => member(n, journal, ['shared'], 40));
    await Promise.all(members.map(finished));
    const { entries, malformed } = parseJournal(await readFile(journal, 'utf8'));
    const report = checkJournal(entries, malformed.length);
    expect(report.ok).toBe(false);
    expect(report.overlaps.length).toBeGreaterThan(0);
    expect(report.overlaps.every((o) => o.first.member !== o.second.member)).toBe(true);
    const createTwice = report.duplicates.find((d) => d.call === 'createVolume' && d.resource === 'volume:shared');
    expect(createTwice?.calls).toHaveLength(3);
  });

  it('reports the call of a member killed in the middle of it as unfinished', async () => {
    const journal = join(dir, 'killed.jsonl');
    const victim = member('k1', journal, ['doomed'], 60_000);
    await expect
      .poll(async () => parseJournal(await readFile(journal, 'utf8').catch(() => '')).entries.length, { timeout: 20_000 })
      .toBe(1);
    victim.killNow();
    await victim.waitForExit();
    const report = checkJournal(parseJournal(await readFile(journal, 'utf8')).entries);
    expect(report.unfinished).toMatchObject([{ member: 'k1@be', call: 'createVolume', resource: 'volume:doomed' }]);
    expect(report.ok).toBe(false);
  });
});
