import { chmod, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, CopyError } from '../../../src/errors.js';
import { copySparseFile, cpArguments, probeCopyTool } from '../../../src/drivers/sparse-copy.js';
import { GIB } from '../../../src/drivers/volume-driver.js';
import { waitFor } from '../../support/wait.js';
import { allocatedBytes, cpChildren, firstDifference, mkfifo, processExists, writeScattered } from '../../support/sparse-files.js';

const live = (): AbortSignal => new AbortController().signal;

describe('copySparseFile (cp --sparse=always --reflink=auto, on a real directory)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-sparse-copy-'));
  });
  afterEach(async () => {
    expect(await cpChildren()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('copies an empty 100 GiB file with its size and no more allocated blocks', async () => {
    const source = join(dir, 'volume-empty');
    await writeFile(source, '');
    await truncate(source, 100 * GIB);
    for (const reflink of [true, false]) {
      const target = join(dir, `copy-${String(reflink)}`);
      expect(await copySparseFile(source, target, { signal: live(), reflink })).toBe('created');
      expect((await stat(target)).size).toBe(100 * GIB);
      expect(await allocatedBytes(target)).toBeLessThanOrEqual(await allocatedBytes(source));
    }
    expect((await readdir(dir)).sort()).toEqual(['copy-false', 'copy-true', 'volume-empty']);
  });

  it('copies 1 GiB with scattered data byte for byte, and allocates no more than the source', async () => {
    const source = join(dir, 'volume-scattered');
    await writeFile(source, '');
    await truncate(source, GIB);
    const written = await writeScattered(source, GIB, 20_251_206, 200, 256 * 1024);
    const target = join(dir, 'snapshot-scattered');
    expect(await copySparseFile(source, target, { signal: live(), reflink: false })).toBe('created');
    expect((await stat(target)).size).toBe(GIB);
    expect(await firstDifference(source, target)).toBe(-1);
    // The regions written, once more on their own: the comparison above did not skip them.
    const fs = await open(source, 'r');
    const ft = await open(target, 'r');
    try {
      for (const { offset, length } of written.slice(0, 20)) {
        const [a, b] = [Buffer.alloc(length), Buffer.alloc(length)];
        await fs.read(a, 0, length, offset);
        await ft.read(b, 0, length, offset);
        expect(b.equals(a)).toBe(true);
      }
    } finally {
      await fs.close();
      await ft.close();
    }
    expect(await allocatedBytes(target)).toBeLessThanOrEqual(await allocatedBytes(source));
    // The comparison does see a difference: one byte changed in the first region.
    const ft2 = await open(target, 'r+');
    const byte = Buffer.alloc(1);
    await ft2.read(byte, 0, 1, 5 * 1024 * 1024);
    await ft2.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 5 * 1024 * 1024);
    await ft2.close();
    expect(await firstDifference(source, target)).toBe(0);
  });

  it('kills cp when the signal aborts mid-copy and leaves no partial file; a retry then copies', async () => {
    const source = join(dir, 'source-pipe');
    const target = join(dir, 'snapshot-s1');
    mkfifo(source);
    const stop = new AbortController();
    const pending = copySparseFile(source, target, { signal: stop.signal, reflink: false });
    const outcome = pending.catch((e: unknown) => e);
    // cp blocks opening the pipe until a writer comes; then it copies what it gets, and waits.
    const writer = await open(source, 'w');
    try {
      await writer.write(Buffer.alloc(64 * 1024, 'x'));
      await waitFor(async () => (await readdir(dir)).some((f) => f.startsWith('.tmp-')) && (await tempSize(dir)) > 0, { timeoutMs: 10_000 });
      const [pid] = await cpChildren();
      expect(pid).toBeDefined();
      // cp gets PATH and LC_ALL only: no secret from hearth's environment reaches it.
      const environ = (await readFile(`/proc/${pid!}/environ`, 'utf8')).split('\0').filter(Boolean);
      expect(environ.map((e) => e.slice(0, e.indexOf('='))).sort()).toEqual(['LC_ALL', 'PATH']);
      stop.abort(new Error('lock lost'));
      const err = await outcome;
      expect(err).toBeInstanceOf(AbortedError);
      expect((err as AbortedError).cause).toEqual(new Error('lock lost'));
      expect(processExists(pid!)).toBe(false);
    } finally {
      await writer.close();
    }
    expect(await readdir(dir)).toEqual(['source-pipe']);
    // The retry of an idempotent call finds nothing under the target name, so it copies.
    await rm(source);
    await writeFile(source, 'finished');
    expect(await copySparseFile(source, target, { signal: live() })).toBe('created');
    expect(await readFile(target, 'utf8')).toBe('finished');
  });

  it('takes its timeout from the caller\'s signal', async () => {
    const source = join(dir, 'never-written');
    mkfifo(source);
    const err = await copySparseFile(source, join(dir, 'copy'), { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(((err as AbortedError).cause as Error).name).toBe('TimeoutError');
    expect(await readdir(dir)).toEqual(['never-written']);
  });

  it('starts nothing once aborted, and publishes nothing when the checkpoint refuses', async () => {
    const source = join(dir, 'source');
    await writeFile(source, 'data');
    const aborted = AbortSignal.abort(new Error('gone'));
    await expect(copySparseFile(source, join(dir, 'a'), { signal: aborted })).rejects.toBeInstanceOf(AbortedError);
    let checks = 0;
    const checkpoint = (): void => {
      checks++;
      if (checks === 2) throw new AbortedError('driver call createSnapshot: its locks or lease are gone');
    };
    await expect(copySparseFile(source, join(dir, 'b'), { signal: live(), checkpoint })).rejects.toBeInstanceOf(AbortedError);
    expect(checks).toBe(2);
    expect(await readdir(dir)).toEqual(['source']);
  });

  it('is idempotent: a second call keeps the finished copy, or replaces it atomically when asked', async () => {
    const source = join(dir, 'source');
    const target = join(dir, 'copy');
    await writeFile(source, 'first');
    expect(await copySparseFile(source, target, { signal: live() })).toBe('created');
    const first = await stat(target);
    await writeFile(source, 'second');
    expect(await copySparseFile(source, target, { signal: live() })).toBe('existed');
    expect(await readFile(target, 'utf8')).toBe('first');
    expect((await stat(target)).ino).toBe(first.ino);
    expect(await copySparseFile(source, target, { signal: live(), ifExists: 'replace' })).toBe('replaced');
    expect(await readFile(target, 'utf8')).toBe('second');
    expect((await stat(target)).ino).not.toBe(first.ino);
    expect((await readdir(dir)).sort()).toEqual(['copy', 'source']);
  });

  it('passes paths as arguments, never through a shell', async () => {
    const source = join(dir, "-n $(touch pwned) ; 'q'");
    await writeFile(source, 'odd name');
    const target = join(dir, '--target with spaces');
    expect(cpArguments(source, target, true).slice(-3)).toEqual(['--', source, target]);
    await copySparseFile(source, target, { signal: live() });
    expect(await readFile(target, 'utf8')).toBe('odd name');
    expect((await readdir(dir)).sort()).toEqual(['--target with spaces', "-n $(touch pwned) ; 'q'"]);
  });

  it('says clearly when cp is missing', async () => {
    await writeFile(join(dir, 'source'), 'data');
    const err = await copySparseFile(join(dir, 'source'), join(dir, 'copy'), { signal: live(), command: join(dir, 'no-such-cp') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyError);
    expect(err).toMatchObject({ code: 'COPY_FAILED', failure: 'tool-missing', errno: 'ENOENT', retryable: false });
    expect((err as CopyError).message).toMatch(/was not found.*GNU coreutils cp/);
    expect(await readdir(dir)).toEqual(['source']);
  });

  it('says when cp is not GNU cp', async () => {
    // A stand-in for a cp without GNU's options (busybox, BSD): it rejects them as they do.
    const other = join(dir, 'other-cp');
    await writeFile(other, "#!/bin/sh\necho \"cp: unrecognized option '--sparse=always'\" >&2\nexit 1\n");
    await chmod(other, 0o755);
    await writeFile(join(dir, 'source'), 'data');
    const err = await copySparseFile(join(dir, 'source'), join(dir, 'copy'), { signal: live(), command: other }).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'tool-unsupported', retryable: false });
    expect((await readdir(dir)).sort()).toEqual(['other-cp', 'source']);
  });

  it('probes the copy program at start: GNU cp gives its version, others a CopyError', async () => {
    expect(await probeCopyTool()).toMatch(/^cp \(GNU coreutils\) \d+\.\d+/);
    await expect(probeCopyTool(join(dir, 'no-such-cp'))).rejects.toMatchObject({ failure: 'tool-missing' });
    const other = join(dir, 'other-cp');
    await writeFile(other, '#!/bin/sh\necho "BusyBox v1.36.1 multi-call binary."\n');
    await chmod(other, 0o755);
    await expect(probeCopyTool(other)).rejects.toMatchObject({ failure: 'tool-unsupported' });
  });

  it('reports what cp reported, with the system error it named', async () => {
    const err = await copySparseFile(join(dir, 'missing'), join(dir, 'copy'), { signal: live() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyError);
    expect(err).toMatchObject({ failure: 'failed', errno: 'ENOENT', retryable: false });
    expect((err as CopyError).stderr).toMatch(/No such file or directory/);
    expect(await readdir(dir)).toEqual([]);
  });
});

async function tempSize(dir: string): Promise<number> {
  const tmp = (await readdir(dir)).find((f) => f.startsWith('.tmp-'));
  return tmp === undefined ? 0 : (await stat(join(dir, tmp))).size;
}
