import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, ActiveActiveUnsupportedError, BackendUnavailableError, DriverError } from '../../../src/errors.js';
import { openDriver } from '../../../src/composition/driver.js';
import { loadConfig } from '../../../src/config/load.js';
import { checkJournal, parseJournal } from '../../../src/drivers/fake-journal.js';
import { FakeVolumeDriver } from '../../../src/drivers/fake-volume-driver.js';
import { FileVolumeDriver } from '../../../src/drivers/file-volume-driver.js';
import { type DriverContext, requireActiveActive } from '../../../src/drivers/volume-driver.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { describeVolumeDriverContract } from '../../contract/volume-driver.contract.js';

describeVolumeDriverContract('fake', async () => ({ driver: await FakeVolumeDriver.open(), cleanup: async () => undefined }));

const ctx = (opId: string, signal: AbortSignal = new AbortController().signal): DriverContext => ({ signal, member: 'node1@be', opId });

describe('fake driver', () => {
  let dir: string;
  let journalPath: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-fake-driver-'));
    journalPath = join(dir, 'journal.jsonl');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('journals a start and an end line for every call, with member, opId, pid and resource', async () => {
    const driver = await FakeVolumeDriver.open({ journalPath });
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx('op-1'));
    await driver.createSnapshot({ id: 's1', volumeId: 'v1' }, ctx('op-2'));
    await driver.deleteVolume({ id: 'v1' }, ctx('op-3'));
    await driver.close();
    const { entries, malformed } = parseJournal(await readFile(journalPath, 'utf8'));
    expect(malformed).toEqual([]);
    expect(entries.map((e) => `${e.event} ${e.call} ${e.resource} ${e.opId}`)).toEqual([
      'start createVolume volume:v1 op-1',
      'end createVolume volume:v1 op-1',
      'start createSnapshot snapshot:s1 op-2',
      'end createSnapshot snapshot:s1 op-2',
      'start deleteVolume volume:v1 op-3',
      'end deleteVolume volume:v1 op-3',
    ]);
    expect(entries.every((e) => e.member === 'node1@be' && e.pid === process.pid)).toBe(true);
    expect(entries.filter((e) => e.event === 'end').every((e) => e.ok === true)).toBe(true);
    const report = checkJournal(entries);
    expect(report.ok).toBe(true);
    expect(report.calls).toHaveLength(3);
  });

  it('is down while its down file exists, with the file\'s first line as the reason, and refuses its capacity then', async () => {
    const downFile = join(dir, 'down');
    const driver = await FakeVolumeDriver.open({ downFile, capacityGiB: 10 });
    expect(await driver.health()).toEqual({ state: 'up' });
    expect((await driver.capacity()).totalBytes).toBe(10 * 1024 ** 3);
    await writeFile(downFile, 'share unmounted\nmore\n');
    expect(await driver.health()).toEqual({ state: 'down', reason: 'share unmounted' });
    await expect(driver.capacity()).rejects.toBeInstanceOf(BackendUnavailableError);
    await rm(downFile);
    expect(await driver.health()).toEqual({ state: 'up' });
    await driver.close();
  });

  it('a hanging call waits for its abort and journals its end then; one that ignores aborts ends only at close', async () => {
    const driver = await FakeVolumeDriver.open({ journalPath, hang: ['createVolume'] });
    const abort = new AbortController();
    const call = driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx('op-1', abort.signal));
    await driver.deleteVolume({ id: 'v2' }, ctx('op-2'));
    abort.abort(new Error('force-delete'));
    await expect(call).rejects.toBeInstanceOf(AbortedError);
    const stubborn = await FakeVolumeDriver.open({ hang: ['extendVolume'], hangIgnoresAbort: true });
    const ignoring = new AbortController();
    const stuck = stubborn.extendVolume({ id: 'v1' }, 2, ctx('op-3', ignoring.signal));
    let ended = false;
    void stuck.catch(() => (ended = true));
    ignoring.abort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ended).toBe(false);
    await stubborn.close();
    await expect(stuck).rejects.toBeInstanceOf(AbortedError);
    await driver.close();
    const entries = parseJournal(await readFile(journalPath, 'utf8')).entries;
    expect(entries.map((e) => `${e.event} ${e.call} ${String(e.ok)}`)).toEqual(['start createVolume undefined', 'start deleteVolume undefined', 'end deleteVolume true', 'end createVolume false']);
  });

  it('takes at least the configured latency per call', async () => {
    const driver = await FakeVolumeDriver.open({ latencyMs: 120, journalPath });
    const started = performance.now();
    await driver.extendVolume({ id: 'v1' }, 2, ctx('op-1'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(115);
    await driver.close();
    const [call] = checkJournal(parseJournal(await readFile(journalPath, 'utf8')).entries).calls;
    expect((call?.end ?? 0) - (call?.start ?? 0)).toBeGreaterThanOrEqual(115);
  });

  it('fails calls at the configured rate, decided by the injected randomness, and journals the failure', async () => {
    const draws = [0.1, 0.9, 0.49, 0.5];
    const driver = await FakeVolumeDriver.open({ failureRate: 0.5, journalPath, random: () => draws.shift() ?? 1 });
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(await driver.createVolume({ id: `v${i}`, sizeGiB: 1 }, ctx(`op-${i}`)).then(() => 'ok', (err: unknown) => err));
    }
    expect(outcomes[0]).toBeInstanceOf(DriverError);
    expect(outcomes[1]).toBe('ok');
    expect(outcomes[2]).toBeInstanceOf(DriverError);
    expect(outcomes[3]).toBe('ok');
    await driver.close();
    const ends = parseJournal(await readFile(journalPath, 'utf8')).entries.filter((e) => e.event === 'end');
    expect(ends.map((e) => e.ok)).toEqual([false, true, false, true]);
    expect(ends[0]?.error).toMatch(/injected failure on volume:v0/);
  });

  it('is aborted by its signal during the latency, and journals the abort', async () => {
    const driver = await FakeVolumeDriver.open({ latencyMs: 10_000, journalPath });
    const stop = new AbortController();
    const pending = driver.deleteVolume({ id: 'v1' }, ctx('op-1', stop.signal));
    setTimeout(() => stop.abort(new Error('lock lost')), 20);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    await driver.close();
    const ends = parseJournal(await readFile(journalPath, 'utf8')).entries.filter((e) => e.event === 'end');
    expect(ends).toMatchObject([{ ok: false, error: expect.stringMatching(/aborted/) as unknown }]);
  });

  it('ends a call whose locks or lease went while it ran (a process just woken) as aborted, before its signal fires', async () => {
    const driver = await FakeVolumeDriver.open({ latencyMs: 30, journalPath });
    let held = true;
    const pending = driver.extendVolume({ id: 'v1' }, 2, { ...ctx('op-1'), stillHeld: () => held });
    setTimeout(() => (held = false), 5);
    await expect(pending).rejects.toThrow(/its locks or lease are gone/);
    // Still held throughout: the same call completes.
    await driver.extendVolume({ id: 'v2' }, 2, { ...ctx('op-2'), stillHeld: () => true });
    await driver.close();
    const ends = parseJournal(await readFile(journalPath, 'utf8')).entries.filter((e) => e.event === 'end');
    expect(ends.map((e) => [e.opId, e.ok])).toEqual([['op-1', false], ['op-2', true]]);
  });

  it('appends to an existing journal shared with other drivers', async () => {
    const a = await FakeVolumeDriver.open({ journalPath });
    const b = await FakeVolumeDriver.open({ journalPath });
    await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => a.createVolume({ id: `a${i}`, sizeGiB: 1 }, { ...ctx(`a-${i}`), member: 'a@be' })),
      ...Array.from({ length: 50 }, (_, i) => b.createVolume({ id: `b${i}`, sizeGiB: 1 }, { ...ctx(`b-${i}`), member: 'b@be' })),
    ]);
    await Promise.all([a.close(), b.close()]);
    const { entries, malformed } = parseJournal(await readFile(journalPath, 'utf8'));
    expect(malformed).toEqual([]);
    expect(entries).toHaveLength(200);
    expect(checkJournal(entries).byMember).toEqual({ 'a@be': 50, 'b@be': 50 });
  });
});

describe('active/active and the driver factory', () => {
  it('lets a clustered worker use a driver that supports active/active, and refuses one that does not', async () => {
    const shared = await FakeVolumeDriver.open();
    const local = await FakeVolumeDriver.open({ supportsActiveActive: false });
    expect(() => requireActiveActive(shared, true)).not.toThrow();
    expect(() => requireActiveActive(local, false)).not.toThrow();
    expect(() => requireActiveActive(local, true)).toThrow(ActiveActiveUnsupportedError);
    try {
      requireActiveActive(local, true);
    } catch (err) {
      expect((err as ActiveActiveUnsupportedError).code).toBe('UNSUPPORTED');
      expect((err as Error).message).toMatch(/fake volume driver does not support active\/active/);
    }
  });

  it('builds the configured driver: file under <dataDir>/volumes by default, or fake', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hearth-create-driver-'));
    try {
      const defaults = await loadConfig({ env: {} });
      const driverConfig = { ...defaults.driver, name: 'file' as const };
      const base = { dataDir, cluster: 'c', backend: 'be', host: 'h', backendHealth: defaults.backendHealth };
      const file = await openDriver({ ...base, driver: driverConfig }, { logger: silentLogger() });
      expect(file).toBeInstanceOf(FileVolumeDriver);
      expect((file as FileVolumeDriver).volumePath('x')).toBe(join(dataDir, 'volumes', 'volume-x'));
      const fake = await openDriver({ ...base, driver: { ...driverConfig, name: 'fake', fakeJournal: join(dataDir, 'j') } }, { logger: silentLogger() });
      expect(fake).toBeInstanceOf(FakeVolumeDriver);
      await fake.createVolume({ id: 'v', sizeGiB: 1 }, ctx('op'));
      await Promise.all([file.close(), fake.close()]);
      expect(parseJournal(await readFile(join(dataDir, 'j'), 'utf8')).entries).toHaveLength(2);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
