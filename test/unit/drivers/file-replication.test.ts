import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileVolumeDriver } from '../../../src/drivers/file-volume-driver.js';
import { type DriverContext, GIB } from '../../../src/drivers/volume-driver.js';
import { describeReplicationContract, type ReplicatingDriver } from '../../contract/volume-driver-replication.contract.js';
import { cpChildren } from '../../support/sparse-files.js';

async function openReplicating(root: string, copyCommand?: string): Promise<ReplicatingDriver> {
  const driver = await FileVolumeDriver.open({
    dir: join(root, 'default'),
    clone: false,
    ...(copyCommand === undefined ? {} : { copyCommand }),
    replicationTargets: [
      { backendId: 'dr1', location: join(root, 'dr1') },
      { backendId: 'dr2', location: join(root, 'dr2') },
    ],
  });
  return driver as ReplicatingDriver;
}

describeReplicationContract('file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hearth-file-repl-'));
  return {
    driver: await openReplicating(root),
    another: () => openReplicating(root),
    // A copy program that waits before it copies: a clone stays in flight for half a second.
    slowMember: async () => {
      const script = join(root, 'slow-cp');
      await writeFile(script, '#!/bin/sh\nsleep 0.5\nexec cp "$@"\n', { mode: 0o755 });
      return openReplicating(root, script);
    },
    dirOf: (backendId) => join(root, backendId),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

let seq = 0;
const ctx = (epoch?: number): DriverContext => ({ signal: new AbortController().signal, member: 'node1@be', opId: `op-${++seq}`, ...(epoch === undefined ? {} : { epoch }) });

async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

async function writeAt(path: string, position: number, data: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(data, 0, data.length, position);
  } finally {
    await fh.close();
  }
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

describe('file driver replication on real directories', () => {
  let root: string;
  let driver: ReplicatingDriver;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hearth-file-repl-'));
    driver = await openReplicating(root);
  });
  afterEach(async () => {
    await driver.close();
    expect(await cpChildren()).toEqual([]);
    await rm(root, { recursive: true, force: true });
  });

  it('keeps the copies sparse and carries the data a consumer wrote at the next extend or snapshot of the volume', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 4 }, ctx());
    const data = Buffer.alloc(64 * 1024, 0x5a);
    await writeAt(join(root, 'default', 'volume-v1'), 2 * GIB, data);
    await driver.extendVolume({ id: 'v1' }, 5, ctx());
    const later = Buffer.alloc(4096, 0x33);
    await writeAt(join(root, 'default', 'volume-v1'), 3 * GIB, later);
    await driver.createSnapshot({ id: 's1', volumeId: 'v1' }, ctx());
    for (const backend of ['dr1', 'dr2']) {
      expect(await readAt(join(root, backend, 'volume-v1'), 3 * GIB, later.length)).toEqual(later);
      for (const name of ['volume-v1', 'snapshot-s1']) {
        const path = join(root, backend, name);
        expect((await stat(path)).size).toBe(5 * GIB);
        expect(await allocated(path)).toBeLessThan(4 * 1024 * 1024);
        expect(await readAt(path, 2 * GIB, data.length)).toEqual(data);
      }
    }
  });

  it('fails back with the data written on the target present on the primary, sparse', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 2 }, ctx());
    await driver.replication.failover('dr1', 1, ctx());
    const data = Buffer.from('written while failed over');
    // The consumer writes through the connection, which now points at the target.
    const info = await driver.initializeConnection?.({ id: 'v1' }, { host: 'compute-1' }, ctx(1));
    expect(info?.data.device_path).toBe(join(root, 'dr1', 'volume-v1'));
    await writeAt(join(root, 'dr1', 'volume-v1'), GIB + 4096, data);
    await driver.replication.failover('default', 2, ctx());
    const primary = join(root, 'default', 'volume-v1');
    expect(await readAt(primary, GIB + 4096, data.length)).toEqual(data);
    expect((await stat(primary)).size).toBe(2 * GIB);
    expect(await allocated(primary)).toBeLessThan(4 * 1024 * 1024);
  });

  it('reports health and capacity of the backend it serves', async () => {
    await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
    await driver.replication.failover('dr1', 1, ctx());
    await driver.createVolume({ id: 'v2', sizeGiB: 2 }, ctx(1));
    expect(await driver.health()).toEqual({ state: 'up' });
    expect((await driver.capacity()).allocatedBytes).toBe(3 * GIB);
    await rm(join(root, 'default'), { recursive: true, force: true });
    expect(await driver.health()).toEqual({ state: 'up' });
  });

  it('refuses a target that is the primary directory, or two targets in one place', async () => {
    const dir = join(root, 'default');
    await expect(FileVolumeDriver.open({ dir, replicationTargets: [{ backendId: 'dr1', location: `${dir}/` }] })).rejects.toThrow(/both the primary directory and a replication target/);
  });
});
