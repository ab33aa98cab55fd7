import { mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, CopyError, DriverError } from '../../../src/errors.js';
import { FileVolumeDriver } from '../../../src/drivers/file-volume-driver.js';
import { type DriverContext, GIB } from '../../../src/drivers/volume-driver.js';
import { describeVolumeDriverContract } from '../../contract/volume-driver.contract.js';
import { cpChildren, mkfifo, processExists } from '../../support/sparse-files.js';
import { waitFor } from '../../support/wait.js';

describeVolumeDriverContract('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-file-driver-'));
  return { driver: await FileVolumeDriver.open({ dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

const ctx = (signal: AbortSignal = new AbortController().signal): DriverContext => ({ signal, member: 'node1@be', opId: 'op-1' });

/** What a directory holds besides hearth's own `.hearth` (the cluster marker, fence markers). */
async function volumeFiles(path: string): Promise<string[]> {
  return (await readdir(path)).filter((name) => name !== '.hearth');
}

/** Bytes a file really occupies on disk. */
async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, position);
    return buf;
  } finally {
    await fh.close();
  }
}

async function writeAt(path: string, position: number, data: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(data, 0, data.length, position);
  } finally {
    await fh.close();
  }
}

describe('file driver on a real directory', () => {
  let dir: string;
  let driver: FileVolumeDriver;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-file-driver-'));
    driver = await FileVolumeDriver.open({ dir: join(dir, 'volumes'), clone: false });
  });
  afterEach(async () => {
    await driver.close();
    expect(await cpChildren()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the directory and a sparse volume-<id> file of the requested size', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 2 }, ctx());
    const path = driver.volumePath('v1');
    expect(path).toBe(join(dir, 'volumes', 'volume-v1'));
    expect((await stat(path)).size).toBe(2 * GIB);
    expect(await allocated(path)).toBeLessThan(1024 * 1024);
    expect(await volumeFiles(join(dir, 'volumes'))).toEqual(['volume-v1']);
  });

  it('refuses to create over a volume of another size, and leaves it alone', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    const err = await driver.createVolume({ id: 'v1', sizeGiB: 3 }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).retryable).toBe(false);
    expect((await stat(driver.volumePath('v1'))).size).toBe(GIB);
  });

  it('extends in place, keeps the data and stays sparse; refuses to shrink or to extend what is missing', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    await writeAt(driver.volumePath('v1'), 4096, Buffer.from('hello'));
    await driver.extendVolume({ id: 'v1' }, 4, ctx());
    expect((await stat(driver.volumePath('v1'))).size).toBe(4 * GIB);
    expect((await readAt(driver.volumePath('v1'), 4096, 5)).toString()).toBe('hello');
    expect(await allocated(driver.volumePath('v1'))).toBeLessThan(1024 * 1024);
    await expect(driver.extendVolume({ id: 'v1' }, 2, ctx())).rejects.toThrow(/cannot shrink/);
    await expect(driver.extendVolume({ id: 'nope' }, 2, ctx())).rejects.toBeInstanceOf(DriverError);
  });

  it('snapshots as a sparse copy holding the volume data at that moment', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    const path = driver.volumePath('v1');
    await writeAt(path, 0, Buffer.from('head'));
    await writeAt(path, 512 * 1024 * 1024 + 3, Buffer.from('middle'));
    await writeAt(path, GIB - 4, Buffer.from('tail'));
    await driver.createSnapshot({ id: 's1', volumeId: 'v1' }, ctx());
    await writeAt(path, 0, Buffer.from('HEAD')); // after the snapshot: not in it
    const snap = driver.snapshotPath('s1');
    expect((await stat(snap)).size).toBe(GIB);
    expect((await readAt(snap, 0, 4)).toString()).toBe('head');
    expect((await readAt(snap, 512 * 1024 * 1024 + 3, 6)).toString()).toBe('middle');
    expect((await readAt(snap, GIB - 4, 4)).toString()).toBe('tail');
    expect(await allocated(snap)).toBeLessThan(4 * 1024 * 1024);
    expect((await volumeFiles(join(dir, 'volumes'))).sort()).toEqual(['snapshot-s1', 'volume-v1']);
  });

  it('refuses to snapshot a volume that does not exist', async () => {
    const err = await driver.createSnapshot({ id: 's1', volumeId: 'nope' }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(await volumeFiles(join(dir, 'volumes'))).toEqual([]);
  });

  it('snapshots an empty 100 GiB volume with its size and no more allocated blocks', async () => {
    await driver.createVolume({ id: 'huge', sizeGiB: 100 }, ctx());
    await driver.createSnapshot({ id: 's-huge', volumeId: 'huge' }, ctx());
    const [volume, snap] = [driver.volumePath('huge'), driver.snapshotPath('s-huge')];
    expect((await stat(snap)).size).toBe(100 * GIB);
    expect(await allocated(snap)).toBeLessThanOrEqual(await allocated(volume));
    // Repeating the call (a takeover after a crash) keeps the finished snapshot.
    const { ino } = await stat(snap);
    await driver.createSnapshot({ id: 's-huge', volumeId: 'huge' }, ctx());
    expect((await stat(snap)).ino).toBe(ino);
    expect((await volumeFiles(join(dir, 'volumes'))).sort()).toEqual(['snapshot-s-huge', 'volume-huge']);
  });

  it('stops a snapshot copy when the signal aborts: cp is killed, neither snapshot nor temp file is left', async () => {
    // A named pipe stands in for a volume whose copy takes long: cp waits on it until killed.
    await driver.createVolume({ id: 'slow', sizeGiB: 1 }, ctx());
    await rm(driver.volumePath('slow'));
    mkfifo(driver.volumePath('slow'));
    const stop = new AbortController();
    const pending = driver.createSnapshot({ id: 's-slow', volumeId: 'slow' }, ctx(stop.signal)).catch((e: unknown) => e);
    const [pid] = await waitFor(async () => {
      const pids = await cpChildren();
      return pids.length > 0 && pids;
    });
    stop.abort(new Error('lock lost'));
    expect(await pending).toBeInstanceOf(AbortedError);
    expect(processExists(pid!)).toBe(false);
    expect(await volumeFiles(join(dir, 'volumes'))).toEqual(['volume-slow']);
  });

  it('reports a missing cp as a DriverError that says so', async () => {
    const noCp = await FileVolumeDriver.open({ dir: join(dir, 'volumes'), copyCommand: join(dir, 'no-such-cp') });
    await noCp.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    const err = await noCp.createSnapshot({ id: 's1', volumeId: 'v1' }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ call: 'createSnapshot', retryable: false });
    expect((err as DriverError).message).toMatch(/was not found/);
    expect((err as DriverError).cause).toBeInstanceOf(CopyError);
    expect(await volumeFiles(join(dir, 'volumes'))).toEqual(['volume-v1']);
    await noCp.close();
  });

  it('is shared: a second member on the same directory sees and changes the same volumes', async () => {
    const other = await FileVolumeDriver.open({ dir: join(dir, 'volumes') });
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    await other.createVolume({ id: 'v1', sizeGiB: 1 }, { ...ctx(), member: 'node2@be' });
    await other.extendVolume({ id: 'v1' }, 2, { ...ctx(), member: 'node2@be' });
    expect((await stat(driver.volumePath('v1'))).size).toBe(2 * GIB);
    await other.deleteVolume({ id: 'v1' }, { ...ctx(), member: 'node2@be' });
    await expect(stat(driver.volumePath('v1'))).rejects.toThrow(/ENOENT/);
    await other.close();
  });

  it('ignores leftover temp files of a member that died, and reports file system errors as DriverError', async () => {
    await writeFile(join(dir, 'volumes', '.tmp-999-deadbeef'), 'partial');
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    await rm(join(dir, 'volumes'), { recursive: true });
    await writeFile(join(dir, 'volumes'), 'not a directory');
    const err = await driver.createVolume({ id: 'v2', sizeGiB: 1 }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).call).toBe('createVolume');
  });
});
