// The file driver's copies — a clone, a volume from a snapshot — on a real directory: they cost
// the data, not the size (`cp --sparse=always`), hold the source's bytes exactly, grow to the
// size asked for, repeat safely after a crash and stop (cp killed) when the call aborts.
import { copyFile, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, DriverError } from '../../../src/errors.js';
import { FileVolumeDriver } from '../../../src/drivers/file-volume-driver.js';
import { type DriverContext, GIB } from '../../../src/drivers/volume-driver.js';
import { allocatedBytes, cpChildren, firstDifference, mkfifo, processExists, writeScattered } from '../../support/sparse-files.js';
import { waitFor } from '../../support/wait.js';

const ctx = (signal: AbortSignal = new AbortController().signal): DriverContext => ({ signal, member: 'node1@be', opId: 'op-1' });

describe('file driver copies', () => {
  let dir: string;
  let volumes: string;
  let driver: FileVolumeDriver;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-file-copies-'));
    volumes = join(dir, 'volumes');
    // No reflinks: the copy itself is what is tested (a reflink would be free on XFS or Btrfs anyway).
    driver = await FileVolumeDriver.open({ dir: volumes, clone: false });
  });
  afterEach(async () => {
    await driver.close();
    expect(await cpChildren()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  const files = async (): Promise<string[]> => (await readdir(volumes)).filter((n) => n !== '.hearth').sort();

  it('clones an empty 100 GiB volume with its size and no more allocated blocks; a repeat keeps the clone', async () => {
    await driver.createVolume({ id: 'huge', sizeGiB: 100 }, ctx());
    await driver.createClonedVolume({ id: 'clone', sizeGiB: 100 }, { id: 'huge' }, ctx());
    const [source, clone] = [driver.volumePath('huge'), driver.volumePath('clone')];
    expect((await stat(clone)).size).toBe(100 * GIB);
    expect(await allocatedBytes(clone)).toBeLessThanOrEqual(await allocatedBytes(source));
    const { ino } = await stat(clone);
    await driver.createClonedVolume({ id: 'clone', sizeGiB: 100 }, { id: 'huge' }, ctx());
    expect((await stat(clone)).ino).toBe(ino);
    expect(await files()).toEqual(['volume-clone', 'volume-huge']);
  });

  it('creates an empty 100 GiB volume from a snapshot with no more allocated blocks than the snapshot', async () => {
    await driver.createVolume({ id: 'huge', sizeGiB: 100 }, ctx());
    await driver.createSnapshot({ id: 'snap', volumeId: 'huge' }, ctx());
    await driver.createVolumeFromSnapshot({ id: 'restored', sizeGiB: 100 }, { id: 'snap' }, ctx());
    expect((await stat(driver.volumePath('restored'))).size).toBe(100 * GIB);
    expect(await allocatedBytes(driver.volumePath('restored'))).toBeLessThanOrEqual(await allocatedBytes(driver.snapshotPath('snap')));
  });

  it('copies 1 GiB with scattered data byte for byte, and grows a larger copy from a snapshot keeping its data', async () => {
    await driver.createVolume({ id: 'data', sizeGiB: 1 }, ctx());
    const source = driver.volumePath('data');
    const written = await writeScattered(source, GIB, 20_261_206, 200, 256 * 1024);
    await driver.createClonedVolume({ id: 'clone', sizeGiB: 1 }, { id: 'data' }, ctx());
    expect(await firstDifference(source, driver.volumePath('clone'))).toBe(-1);
    expect(await allocatedBytes(driver.volumePath('clone'))).toBeLessThanOrEqual(await allocatedBytes(source));
    await driver.createSnapshot({ id: 'snap', volumeId: 'data' }, ctx());
    await driver.createVolumeFromSnapshot({ id: 'bigger', sizeGiB: 2 }, { id: 'snap' }, ctx());
    const bigger = driver.volumePath('bigger');
    expect((await stat(bigger)).size).toBe(2 * GIB);
    // The written regions are there, byte for byte; the second GiB is a hole (no more blocks).
    const [fs, fb] = [await open(source, 'r'), await open(bigger, 'r')];
    try {
      for (const { offset, length } of written) {
        const [a, b] = [Buffer.alloc(length), Buffer.alloc(length)];
        await fs.read(a, 0, length, offset);
        await fb.read(b, 0, length, offset);
        expect(b.equals(a)).toBe(true);
      }
    } finally {
      await fs.close();
      await fb.close();
    }
    expect(await allocatedBytes(bigger)).toBeLessThanOrEqual(await allocatedBytes(source));
  }, 120_000);

  it('finishes a copy that crashed after publishing but before growing; refuses a copy larger than asked', async () => {
    await driver.createVolume({ id: 'src', sizeGiB: 1 }, ctx());
    // What a member that died between the copy and the truncate leaves: the copy at the source's size.
    await copyFile(driver.volumePath('src'), driver.volumePath('grown'));
    await driver.createClonedVolume({ id: 'grown', sizeGiB: 3 }, { id: 'src' }, ctx());
    expect((await stat(driver.volumePath('grown'))).size).toBe(3 * GIB);
    await expect(driver.createClonedVolume({ id: 'grown', sizeGiB: 2 }, { id: 'src' }, ctx())).rejects.toBeInstanceOf(DriverError);
    await driver.extendVolume({ id: 'src' }, 2, ctx());
    await expect(driver.createClonedVolume({ id: 'small', sizeGiB: 1 }, { id: 'src' }, ctx())).rejects.toThrow(/more than the 1 GiB/);
    expect(await files()).toEqual(['volume-grown', 'volume-src']);
  });

  it('refuses a copy whose source does not exist, leaving nothing', async () => {
    await expect(driver.createClonedVolume({ id: 'c', sizeGiB: 1 }, { id: 'missing' }, ctx())).rejects.toThrow(/volume missing, the source of volume c, does not exist/);
    await expect(driver.createVolumeFromSnapshot({ id: 'c', sizeGiB: 1 }, { id: 'missing' }, ctx())).rejects.toBeInstanceOf(DriverError);
    expect(await files()).toEqual([]);
  });

  it('stops a copy when the signal aborts: cp is killed, no volume or temp file is left', async () => {
    // A named pipe stands in for a source whose copy takes long: cp waits on it until killed.
    mkfifo(driver.volumePath('slow'));
    const stop = new AbortController();
    const pending = driver.createClonedVolume({ id: 'copy', sizeGiB: 1 }, { id: 'slow' }, ctx(stop.signal)).catch((e: unknown) => e);
    const [pid] = await waitFor(async () => {
      const pids = await cpChildren();
      return pids.length > 0 && pids;
    });
    stop.abort(new Error('lock lost'));
    expect(await pending).toBeInstanceOf(AbortedError);
    expect(processExists(pid!)).toBe(false);
    expect(await files()).toEqual(['volume-slow']);
  });
});
