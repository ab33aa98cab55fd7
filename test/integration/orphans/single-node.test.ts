import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, readJournal, started } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

/**
 * The single-node daemon (SQLite, in-process bus) killed mid-operation: its next run finds the
 * earlier run's operations orphaned and cleans them up at start, before it takes work.
 */
describe('single node: a killed daemon cleans up its earlier run at start', () => {
  const procs: HearthProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
  });

  it('kill -9 mid create and mid delete; the restarted daemon marks the create error and deletes again', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hearth-single-'));
    const journal = join(dataDir, 'journal.jsonl');
    const env = { HEARTH_DRIVER_NAME: 'fake', HEARTH_DRIVER_FAKE_LATENCY_MS: '2000', HEARTH_DRIVER_FAKE_JOURNAL: journal, HEARTH_HOST: 'solo', HEARTH_DATA_DIR: dataDir, HEARTH_LOG_LEVEL: 'info' };
    const victim = await startHearth({ name: 'single-1', env });
    procs.push(victim);
    const client = new ClusterClient(victim);
    const doomed = await client.createVolume();
    await client.waitStatus('volume', doomed, 'available');
    await client.deleteVolume(doomed);
    const fresh = await client.createVolume();
    await started(journal, 'deleteVolume', `volume:${doomed}`);
    await started(journal, 'createVolume', `volume:${fresh}`);
    await victim.kill();

    // The data directory lock of the killed run goes stale after 10 s; until then a start is refused.
    // Generous bounds: on a loaded machine one start through the TypeScript loader can take 20 s.
    const next = await waitFor(
      async () => {
        const p = await startHearth({ name: 'single-2', env: { ...env, HEARTH_API_LISTEN: new URL(victim.apiUrl).host }, startTimeoutMs: 45_000 }).catch(() => undefined);
        if (p) procs.push(p);
        return p;
      },
      { timeoutMs: 120_000, intervalMs: 1_000, what: 'the daemon to start again' },
    );
    const after = new ClusterClient(next);
    await after.waitStatus('volume', doomed, 'deleted');
    await after.waitStatus('volume', fresh, 'error');
    const logs = next.logs();
    const found = logs.filter((l) => l.msg === 'orphaned operation found').map((l) => l.id);
    expect(found.sort()).toEqual([doomed, fresh].sort());
    const startup = logs.find((l) => l.msg === 'start-up cleanup of earlier incarnations done');
    expect(startup).toMatchObject({ found: 2, cleaned: 2, errors: 0, reason: 'start' });
    expect(logs.findIndex((l) => l.msg === 'consuming jobs')).toBeGreaterThan(logs.indexOf(startup!));
    // Two ops of one killed run: one failover.
    expect(await after.metric('hearth_failovers_total', { reason: 'restart' })).toBe(1);
    expect(await after.metric('hearth_orphaned_operations')).toBe(0);
    expect(await after.orphans()).toEqual([]);
    const { report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    expect(report.calls.filter((c) => c.call === 'deleteVolume' && c.resource === `volume:${doomed}` && c.pid === next.pid && c.ok === true)).toHaveLength(1);
  }, 240_000);
});
