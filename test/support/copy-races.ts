// The race of issue 16, run against real `hearth serve` processes: a source (a volume or a
// snapshot) is deleted while copies of it (clones, volumes from the snapshot) are requested, from
// several clients at once. Every copy either completes from an intact source or is refused; the
// source is deleted only after every accepted copy finished (the fake driver's journal says when
// each call ran).
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { checkJournal, parseJournal } from '../../src/drivers/fake-journal.js';
import type { VolumeClient } from './volume-client.js';

/** What the rounds of a race saw, for the test's assertions and its log line. */
export interface RaceTally {
  copiesAccepted: number;
  copiesRefused: number;
  deletesAccepted: number;
  deletesRefusedForHolds: number;
  deletesRefusedOtherwise: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `rounds` races of `copies` copy requests against `deletes` delete attempts of one fresh
 * source, spread over `clients` (round 0 sends the deletes `staggerMs` before the copies, each
 * later round `staggerMs` later, so the first round lets a delete win and later ones the copies). Checks every invariant; resolves with the tally.
 */
export async function raceDeleteAgainstCopies(
  clients: readonly VolumeClient[],
  journal: string,
  from: 'volume' | 'snapshot',
  options: { rounds: number; copies: number; deletes: number; staggerMs: number; timeoutMs?: number },
): Promise<RaceTally> {
  const tally: RaceTally = { copiesAccepted: 0, copiesRefused: 0, deletesAccepted: 0, deletesRefusedForHolds: 0, deletesRefusedOtherwise: 0 };
  const client = (i: number): VolumeClient => clients[i % clients.length]!;
  const wait = { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 50 };
  for (let round = 0; round < options.rounds; round++) {
    const volumeId = await client(round).createVolume(1);
    await client(round).until('volume', volumeId, (v) => v?.status === 'available', wait);
    let sourceId = volumeId;
    if (from === 'snapshot') {
      sourceId = await client(round).createSnapshot(volumeId);
      await client(round).until('snapshot', sourceId, (s) => s?.status === 'available', wait);
    }
    const source = from === 'volume' ? { sourceVolid: sourceId } : { snapshotId: sourceId };
    // Round 0 sends the deletes first; each later round sends them `staggerMs` later than the one before.
    const shiftMs = (round - 1) * options.staggerMs;
    const [copies, deletes] = await Promise.all([
      Promise.all(Array.from({ length: options.copies }, async (_, i) => {
        await sleep(Math.max(0, -shiftMs) + i * 10);
        return client(i).createFrom(source);
      })),
      Promise.all(Array.from({ length: options.deletes }, async (_, i) => {
        await sleep(Math.max(0, shiftMs) + i * 40);
        return client(i + 1).tryDelete(from, sourceId);
      })),
    ]);
    const accepted = copies.filter((c) => c.status === 202).map((c) => c.id!);
    for (const refused of copies.filter((c) => c.status !== 202)) {
      // Refused: the source was being deleted (its condition named) or was gone already.
      expect([400, 404]).toContain(refused.status);
      expect(refused.message).toMatch(refused.status === 404 ? /could not be found/ : /status must be available.* \(status is deleting\)/);
    }
    const deleted = deletes.some((d) => d.status === 202);
    for (const d of deletes) {
      if (d.status === 202) tally.deletesAccepted++;
      else if (/dependent volumes? being created from it \(source in use\)/.test(d.message ?? '')) tally.deletesRefusedForHolds++;
      else {
        expect(d.status, d.message).toBe(400);
        tally.deletesRefusedOtherwise++;
      }
    }
    expect(deletes.filter((d) => d.status === 202).length).toBeLessThanOrEqual(1);
    tally.copiesAccepted += accepted.length;
    tally.copiesRefused += copies.length - accepted.length;
    // Every accepted copy completes from an intact source (`until` rejects on an error status).
    for (const id of accepted) await client(0).until('volume', id, (v) => v?.status === 'available', wait);
    if (!deleted) {
      // Every copy finished: the source's delete is accepted now.
      expect(await client(0).tryDelete(from, sourceId)).toEqual({ status: 202 });
    }
    await client(0).until(from, sourceId, (s) => s === undefined, wait);
    // The journal: the source's delete ran after every copy of it ended, and nothing overlapped.
    const report = checkJournal(parseJournal(await readFile(journal, 'utf8')).entries);
    expect(report.sourceDeletions).toEqual([]);
    expect(report.overlaps).toEqual([]);
    const copyCalls = report.calls.filter((c) => c.source === `${from}:${sourceId}`);
    expect(copyCalls.map((c) => c.resource).sort()).toEqual(accepted.map((id) => `volume:${id}`).sort());
    expect(copyCalls.every((c) => c.ok === true)).toBe(true);
    const deletion = report.calls.find((c) => c.resource === `${from}:${sourceId}` && c.call === (from === 'volume' ? 'deleteVolume' : 'deleteSnapshot'));
    expect(deletion).toBeDefined();
    for (const c of copyCalls) expect(deletion!.start).toBeGreaterThanOrEqual(c.end!);
    // Clean up the round.
    await Promise.all(accepted.map(async (id, i) => {
      await client(i).deleteVolume(id);
      await client(i).until('volume', id, (v) => v === undefined, wait);
    }));
    if (from === 'snapshot') {
      await client(0).deleteVolume(volumeId);
      await client(0).until('volume', volumeId, (v) => v === undefined, wait);
    }
  }
  return tally;
}
