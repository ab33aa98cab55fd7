// The allocator hearth's container image runs with, for the suites that measure memory "as
// deployers run it". deploy/Dockerfile preloads jemalloc (LD_PRELOAD, MALLOC_CONF); these
// suites start the built JavaScript with the same two variables, read from the Dockerfile so the
// bench cannot drift from the image, and the library from this machine's libjemalloc2 (Debian;
// scripts/install-system-deps.sh installs it). BENCH_ALLOCATOR=glibc measures glibc's malloc
// instead, for the comparison docs/operations.md ("Memory") shows.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');

/** What the bench runs hearth's processes with, and how to say it in the log. */
export interface BenchAllocator {
  readonly label: string;
  /** Extra environment for a hearth process (empty for glibc). */
  readonly env: Readonly<Record<string, string>>;
}

/** The image's `ENV LD_PRELOAD=… MALLOC_CONF=…`, as written in deploy/Dockerfile. */
export function imageAllocatorEnv(dockerfile = readFileSync(join(REPO, 'deploy/Dockerfile'), 'utf8')): { preload: string; mallocConf: string } {
  const env = new Map<string, string>();
  for (const m of dockerfile.replace(/\\\n/g, ' ').matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of (m[1] as string).trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  const preload = env.get('LD_PRELOAD');
  const mallocConf = env.get('MALLOC_CONF');
  if (!preload || !mallocConf) throw new Error('deploy/Dockerfile sets no LD_PRELOAD and MALLOC_CONF: the bench cannot run as the image does');
  return { preload, mallocConf };
}

/** This machine's libjemalloc.so.2 (Debian's multiarch directory), or undefined. */
function localJemalloc(): string | undefined {
  for (const dir of ['/usr/lib', '/usr/local/lib']) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) {
      const path = entry.endsWith('-linux-gnu') ? join(dir, entry, 'libjemalloc.so.2') : join(dir, entry);
      if (path.endsWith('libjemalloc.so.2') && existsSync(path)) return path;
    }
  }
  return undefined;
}

/**
 * The image's allocator (default), or glibc's with `BENCH_ALLOCATOR=glibc`.
 *
 * @throws Error when jemalloc is asked for and libjemalloc2 is not installed (run `make deps`).
 */
export function benchAllocator(choice = process.env.BENCH_ALLOCATOR ?? 'image'): BenchAllocator {
  if (choice === 'glibc') return { label: 'glibc malloc (BENCH_ALLOCATOR=glibc)', env: {} };
  if (choice !== 'image') throw new Error(`BENCH_ALLOCATOR must be image or glibc, not ${choice}`);
  const { preload, mallocConf } = imageAllocatorEnv();
  if (!preload.endsWith('libjemalloc.so.2')) throw new Error(`deploy/Dockerfile preloads ${preload}; the bench knows only jemalloc`);
  const library = localJemalloc();
  if (!library) throw new Error('libjemalloc.so.2 not found: install Debian package libjemalloc2 (make deps does), or set BENCH_ALLOCATOR=glibc');
  return { label: `jemalloc as the image runs it (MALLOC_CONF=${mallocConf})`, env: { LD_PRELOAD: library, MALLOC_CONF: mallocConf } };
}
