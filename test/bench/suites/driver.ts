// The file driver's copies (issue 16): a snapshot of an empty 100 GiB volume through the
// driver's public API, against `cp --sparse=always --reflink=auto` of the same file run directly
// (the floor: what the driver adds is the temp file, two fsyncs and a link). For scale, what the
// in-process copy the driver used before had to do at the least: read every block, measured on
// an empty 1 GiB file and multiplied by 100 (an estimate, and labelled so). Each figure is the
// median of several rounds; the files live under the run's temp dir.
import { spawn } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FileVolumeDriver } from '../../../src/drivers/file-volume-driver.js';
import { cpArguments } from '../../../src/drivers/sparse-copy.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, relative, standalone } from '../types.js';

const READ_CHUNK_BYTES = 1024 * 1024;

function runCp(source: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cp', cpArguments(source, dest, true), { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`cp exited with ${String(code)}`))));
  });
}

/** Reads every block of `path` as the old in-process copy did; returns seconds. */
async function readEveryBlock(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const started = performance.now();
    for (let pos = 0; ; pos += READ_CHUNK_BYTES) {
      const { bytesRead } = await fh.read(buf, 0, READ_CHUNK_BYTES, pos);
      if (bytesRead === 0) break;
    }
    return (performance.now() - started) / 1_000;
  } finally {
    await fh.close();
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1_000;
}

export const suite: BenchSuite = {
  name: 'driver',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const dir = join(ctx.tmpDir, 'driver-bench');
    await mkdir(dir, { recursive: true });
    const driver = await FileVolumeDriver.open({ dir });
    const call = { signal: new AbortController().signal, member: 'bench@file', opId: 'bench' };
    const rounds = ctx.quick ? 3 : 7;
    try {
      await driver.createVolume({ id: 'empty-100g', sizeGiB: 100 }, call);
      const source = driver.volumePath('empty-100g');
      const cpSeconds: number[] = [];
      const snapshotSeconds: number[] = [];
      // Alternating rounds: both see the same load.
      for (let i = 0; i < rounds; i++) {
        const dest = join(dir, `cp-${i}`);
        cpSeconds.push(await timed(() => runCp(source, dest)));
        await rm(dest);
        snapshotSeconds.push(await timed(() => driver.createSnapshot({ id: `s-${i}`, volumeId: 'empty-100g' }, call)));
        await driver.deleteSnapshot({ id: `s-${i}`, volumeId: 'empty-100g' }, call);
      }
      // A clone of the same empty 100 GiB volume (issue 16): the same sparse copy, then nothing to grow.
      const cloneSeconds: number[] = [];
      for (let i = 0; i < rounds; i++) {
        cloneSeconds.push(await timed(() => driver.createClonedVolume({ id: `c-${i}`, sizeGiB: 100 }, { id: 'empty-100g' }, call)));
        await driver.deleteVolume({ id: `c-${i}` }, call);
      }
      await driver.createVolume({ id: 'empty-1g', sizeGiB: 1 }, call);
      const readSeconds = await readEveryBlock(driver.volumePath('empty-1g'));
      ctx.log(`snapshot of an empty 100 GiB volume: median ${percentile(snapshotSeconds, 50).toFixed(3)} s; cp alone ${percentile(cpSeconds, 50).toFixed(3)} s`);
      const cp = standalone('driver.cp_sparse_empty_100g_s', percentile(cpSeconds, 50), 's');
      return [
        cp,
        relative('driver.snapshot_empty_100g_s', percentile(snapshotSeconds, 50), 's', cp),
        relative('driver.clone_empty_100g_s', percentile(cloneSeconds, 50), 's', cp),
        standalone('driver.read_every_block_100g_estimate_s', readSeconds * 100, 's'),
      ];
    } finally {
      await driver.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
