// Helpers for tests of sparse files on a real file system: allocation, scattered writes from a
// seeded generator, region-by-region comparison, and the `cp` children of this process.
import { execFileSync } from 'node:child_process';
import { type FileHandle, open, readdir, readFile, stat } from 'node:fs/promises';

/** Bytes a file really occupies on disk (`st_blocks` × 512). */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** A small seeded generator (mulberry32): the same seed gives the same file on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** One run of bytes written into a file. */
export interface WrittenChunk {
  readonly offset: number;
  readonly length: number;
}

/**
 * Writes `count` chunks of pseudo-random bytes (1 B to `maxChunkBytes`) at pseudo-random
 * offsets of the existing file `path` of `sizeBytes`, plus one chunk at the very start and one
 * ending at the very end, and a data chunk with a run of zeros inside (which a sparse copy may
 * turn into a hole). Returns what it wrote.
 */
export async function writeScattered(path: string, sizeBytes: number, seed: number, count: number, maxChunkBytes: number): Promise<WrittenChunk[]> {
  const random = seededRandom(seed);
  const fh = await open(path, 'r+');
  const written: WrittenChunk[] = [];
  const put = async (offset: number, data: Buffer): Promise<void> => {
    await fh.write(data, 0, data.length, offset);
    written.push({ offset, length: data.length });
  };
  const bytes = (length: number): Buffer => {
    const buf = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) buf[i] = Math.floor(random() * 256);
    return buf;
  };
  try {
    await put(0, bytes(4_096 + 17));
    await put(sizeBytes - 8_191, bytes(8_191));
    const withZeros = Buffer.concat([bytes(100_000), Buffer.alloc(2 * 1024 * 1024), bytes(100_000)]);
    await put(Math.floor(sizeBytes / 3), withZeros);
    for (let i = 0; i < count; i++) {
      const length = 1 + Math.floor(random() * maxChunkBytes);
      await put(Math.floor(random() * (sizeBytes - length)), bytes(length));
    }
  } finally {
    await fh.close();
  }
  return written;
}

/**
 * Compares two files region by region (`regionBytes` at a time, never the whole file in
 * memory). Returns the offset of the first region that differs, or -1 when both are equal and
 * have the same size.
 */
export async function firstDifference(a: string, b: string, regionBytes = 8 * 1024 * 1024): Promise<number> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.size !== sb.size) return Math.min(sa.size, sb.size);
  const fa = await open(a, 'r');
  let fb: FileHandle | undefined;
  try {
    fb = await open(b, 'r');
    const ba = Buffer.alloc(regionBytes);
    const bb = Buffer.alloc(regionBytes);
    for (let pos = 0; pos < sa.size; pos += regionBytes) {
      const length = Math.min(regionBytes, sa.size - pos);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, length, pos), fb.read(bb, 0, length, pos)]);
      if (ra.bytesRead !== length || rb.bytesRead !== length) return pos;
      if (!ba.subarray(0, length).equals(bb.subarray(0, length))) return pos;
    }
    return -1;
  } finally {
    await fa.close();
    await fb?.close();
  }
}

/** PIDs of this process's live `cp` children (read from /proc; zombies excluded). */
export async function cpChildren(): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let line: string;
    try {
      line = await readFile(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // it exited while we looked
    }
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so split after the last ')'.
    const comm = line.slice(line.indexOf('(') + 1, line.lastIndexOf(')'));
    const [state, ppid] = line.slice(line.lastIndexOf(')') + 2).split(' ');
    if (comm === 'cp' && Number(ppid) === process.pid && state !== 'Z') pids.push(Number(name));
  }
  return pids;
}

/** True while a process with this PID exists (a zombie counts: it has not been reaped). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Makes a named pipe (coreutils `mkfifo`; Node.js has no API for it). */
export function mkfifo(path: string): void {
  execFileSync('mkfifo', ['--', path]);
}
