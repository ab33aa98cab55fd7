import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backendWrites, checkJournal, parseJournal } from '../../../src/drivers/fake-journal.js';
import { FakeVolumeDriver } from '../../../src/drivers/fake-volume-driver.js';
import type { DriverContext } from '../../../src/drivers/volume-driver.js';
import { InvalidInputError } from '../../../src/errors.js';
import { describeReplicationContract, type ReplicatingDriver } from '../../contract/volume-driver-replication.contract.js';

const TARGETS = [
  { backendId: 'dr1', location: 'site-b' },
  { backendId: 'dr2', location: 'site-c' },
];

async function openReplicating(journalPath: string, latencyMs = 0): Promise<ReplicatingDriver> {
  return (await FakeVolumeDriver.open({ journalPath, replicationTargets: TARGETS, latencyMs })) as ReplicatingDriver;
}

describeReplicationContract('fake', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hearth-fake-repl-'));
  const journalPath = join(root, 'journal.jsonl');
  return {
    driver: await openReplicating(journalPath),
    another: () => openReplicating(journalPath),
    slowMember: () => openReplicating(journalPath, 500),
    dirOf: (backendId) => join(`${journalPath}.replication`, backendId),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

let seq = 0;
const ctx = (member: string, epoch?: number): DriverContext => ({ signal: new AbortController().signal, member, opId: `op-${++seq}`, ...(epoch === undefined ? {} : { epoch }) });

describe('fake driver replication journal', () => {
  let root: string;
  let journalPath: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hearth-fake-repl-'));
    journalPath = join(root, 'journal.jsonl');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('journals the backend, epoch and replicas of every call and each failover; nothing reaches the old primary after the failover', async () => {
    const runner = await openReplicating(journalPath);
    const partitioned = await openReplicating(journalPath);
    await runner.createVolume({ id: 'v1', sizeGiB: 1 }, ctx('node1@be'));
    await runner.replication.failover('dr1', 1, ctx('node1@be'));
    await runner.createVolume({ id: 'v2', sizeGiB: 1 }, ctx('node1@be', 1));
    // The partitioned member still serves the primary at epoch 0: every call is refused.
    await expect(partitioned.createVolume({ id: 'v3', sizeGiB: 1 }, ctx('node2@be', 0))).rejects.toThrow(/stale backend epoch 0/);
    await expect(partitioned.deleteVolume({ id: 'v1' }, ctx('node2@be'))).rejects.toThrow(/stale backend epoch 0/);
    await runner.close();
    await partitioned.close();

    const { entries, malformed } = parseJournal(await readFile(journalPath, 'utf8'));
    expect(malformed).toEqual([]);
    const report = checkJournal(entries);
    expect(report.ok).toBe(true);
    const failover = report.calls.find((c) => c.call === 'failover');
    expect(failover).toMatchObject({ resource: 'backend:dr1', backend: 'dr1', epoch: 1, ok: true });
    const after = failover?.end ?? 0;
    expect(backendWrites(report.calls, 'default', after)).toEqual([]);
    expect(backendWrites(report.calls, 'dr1', after).map((c) => `${c.call} ${c.resource} ${c.epoch}`)).toEqual(['createVolume volume:v2 1']);
    const first = report.calls.find((c) => c.resource === 'volume:v1' && c.call === 'createVolume');
    expect(first).toMatchObject({ backend: 'default', epoch: 0, replicas: ['dr1', 'dr2'], ok: true });
    const refused = report.calls.filter((c) => c.member === 'node2@be');
    expect(refused.map((c) => `${c.backend} ${c.epoch} ${c.ok}`)).toEqual(['default 0 false', 'default 0 false']);
  });

  it('refuses replication targets without a journal to keep them beside', async () => {
    await expect(FakeVolumeDriver.open({ replicationTargets: TARGETS })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('has no replication without targets, and journals no backend', async () => {
    const driver = await FakeVolumeDriver.open({ journalPath });
    expect(driver.replication).toBeUndefined();
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx('node1@be'));
    await driver.close();
    const { entries } = parseJournal(await readFile(journalPath, 'utf8'));
    expect(entries.every((e) => e.backend === undefined && e.epoch === undefined)).toBe(true);
  });
});
