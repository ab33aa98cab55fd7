/**
 * The file driver's health and capacity checks: what actually breaks on a shared directory.
 *
 * - **The directory is the cluster's.** A marker file, `.hearth/cluster`, holds the cluster id
 *   and a random id. It is written on a member's first start (when the member remembers no
 *   marker in its own `dataDir`); afterwards a missing marker — a share that is not mounted, so
 *   the path leads to an empty local directory — or another cluster's marker is `down`. A
 *   member remembers the marker it saw, so an unmounted share is never given a fresh one.
 * - **Writes reach the storage.** A probe file is written, flushed (`sync FILE`) and removed
 *   within `probeTimeoutMs`.
 * - **Free space** (statfs) is at least `minFreeBytes`; a statfs that fails is `down`, never
 *   zero capacity.
 *
 * Every check that touches the directory runs in a child process through the
 * {@link ProbeRunner} (one in flight; a hung one reads as `down` until it exits), so a hung
 * mount never ties up Node's file-system threads or the event loop.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendUnavailableError } from '../errors.js';
import { writeAtomically } from './atomic-file.js';
import type { ProbeResult, ProbeRunner } from './probe-runner.js';
import type { BackendHealth } from './volume-driver.js';

/** The marker's path under the shared directory. */
export const MARKER_FILE = join('.hearth', 'cluster');

/** What the marker holds (one line of JSON). */
export interface ClusterMarker {
  readonly cluster: string;
  readonly id: string;
}

/** Health check: marker, write probe, statfs. Exit codes say which step failed. */
const HEALTH_SCRIPT = `
dir=$1 marker=$2 probe=$3
[ -e "$marker" ] || { echo "no marker file $marker" >&2; exit 10; }
printf 'marker %s\\n' "$(head -c 1024 -- "$marker" | tr -d '\\n')" || exit 10
printf 'hearth health probe\\n' > "$probe" || exit 11
sync -- "$probe" || exit 12
rm -f -- "$probe" || exit 13
stat -f -c 'statfs %S %b %a' -- "$dir" || exit 14
`;

/** Capacity: statfs, and (when asked) the apparent sizes of volume and snapshot files. */
const CAPACITY_SCRIPT = `
dir=$1 scan=$2
stat -f -c 'statfs %S %b %a' -- "$dir" || exit 14
[ "$scan" = 1 ] || exit 0
find "$dir" -maxdepth 1 -type f \\( -name 'volume-*' -o -name 'snapshot-*' \\) -printf '%f %s\\n' 2>/dev/null |
  awk '{ if (index($1, "volume-") == 1) v += $2; else s += $2 } END { printf "sizes %.0f %.0f\\n", v, s }'
`;

const STEP_BY_CODE: Readonly<Record<number, string>> = {
  10: 'the cluster marker cannot be read',
  11: 'a probe file cannot be written',
  12: 'a probe file cannot be flushed to storage',
  13: 'a probe file cannot be removed',
  14: 'statfs failed',
};

/** statfs in bytes. */
export interface StatFs {
  readonly totalBytes: number;
  readonly freeBytes: number;
}

/** Apparent sizes of the files on the pool. */
export interface FileSizes {
  readonly volumeBytes: number;
  readonly snapshotBytes: number;
}

/** Options of {@link FileBackendCheck}. */
export interface FileBackendCheckOptions {
  readonly dir: string;
  /** The cluster id the marker must name. */
  readonly cluster: string;
  /** Where this member remembers the marker it saw (its own data directory); none: it remembers nothing. */
  readonly stateDir?: string;
  readonly probeTimeoutMs: number;
  readonly minFreeBytes: number;
  /** A name unique to this member for its probe file (its host id). */
  readonly member: string;
}

/** See the module doc. */
export class FileBackendCheck {
  private remembered: ClusterMarker | undefined;

  constructor(
    private readonly options: FileBackendCheckOptions,
    private readonly runner: ProbeRunner,
  ) {}

  private get memoryFile(): string | undefined {
    return this.options.stateDir === undefined ? undefined : join(this.options.stateDir, 'file-driver-marker.json');
  }

  /**
   * At start: adopts the marker on the directory, or writes one if this member has never seen
   * one (its first start). A member that remembers a marker never writes one: the share may be
   * unmounted, and the health check says so. Runs in-process (start-up, before any work).
   */
  async prepare(): Promise<void> {
    this.remembered = await this.readMemory();
    const markerPath = join(this.options.dir, MARKER_FILE);
    let marker = await readMarker(markerPath);
    if (!marker && !this.remembered) {
      await mkdir(join(this.options.dir, '.hearth'), { recursive: true });
      const fresh: ClusterMarker = { cluster: this.options.cluster, id: randomUUID() };
      await writeAtomically(markerPath, async (tmp) => writeFile(tmp, `${JSON.stringify(fresh)}\n`, { flag: 'wx', flush: true }));
      // Another member may have written its marker first: the first one stays.
      marker = await readMarker(markerPath);
    }
    if (marker && !this.remembered && marker.cluster === this.options.cluster) {
      this.remembered = marker;
      const file = this.memoryFile;
      if (file !== undefined) await writeFile(file, `${JSON.stringify(marker)}\n`, { flush: true });
    }
  }

  /** Marker, write probe and free space, in a child process. */
  async health(signal?: AbortSignal): Promise<BackendHealth> {
    const { dir, member, probeTimeoutMs, minFreeBytes } = this.options;
    const probe = join(dir, '.hearth', `probe-${member.replaceAll('/', '_')}`);
    const result = await this.runner.run(HEALTH_SCRIPT, [dir, join(dir, MARKER_FILE), probe], probeTimeoutMs, signal);
    if (result.type !== 'ok') return { state: 'down', reason: describeFailure(result, dir) };
    const lines = parseLines(result.stdout);
    const markerLine = lines.get('marker') ?? '';
    const marker = parseMarker(markerLine);
    if (!marker) return { state: 'down', reason: `the cluster marker ${join(dir, MARKER_FILE)} is not hearth's: ${JSON.stringify(markerLine.slice(0, 80))}` };
    if (marker.cluster !== this.options.cluster) return { state: 'down', reason: `${dir} belongs to cluster ${marker.cluster}, not ${this.options.cluster}` };
    if (this.remembered && marker.id !== this.remembered.id) {
      return { state: 'down', reason: `${dir} holds another marker (${marker.id}) than the one this member saw (${this.remembered.id}): another share is mounted there` };
    }
    const fs = parseStatFs(lines.get('statfs'));
    if (!fs) return { state: 'down', reason: `statfs of ${dir} gave no answer` };
    if (fs.freeBytes < Math.max(1, minFreeBytes)) return { state: 'down', reason: `${dir} is full: ${fs.freeBytes} bytes free, less than backendHealth.minFreeBytes (${minFreeBytes})` };
    return { state: 'up' };
  }

  /**
   * statfs and, when `scan`, the apparent sizes of the volume and snapshot files.
   *
   * @throws BackendUnavailableError when statfs fails, hangs or a probe is outstanding.
   */
  async capacity(scan: boolean, signal?: AbortSignal): Promise<{ fs: StatFs; sizes: FileSizes | undefined }> {
    const { dir, probeTimeoutMs } = this.options;
    const result = await this.runner.run(CAPACITY_SCRIPT, [dir, scan ? '1' : '0'], probeTimeoutMs, signal);
    if (result.type !== 'ok') throw new BackendUnavailableError('filesystem', `capacity of ${dir}: ${describeFailure(result, dir)}`);
    const lines = parseLines(result.stdout);
    const fs = parseStatFs(lines.get('statfs'));
    if (!fs) throw new BackendUnavailableError('filesystem', `capacity of ${dir}: statfs gave no answer`);
    if (!scan) return { fs, sizes: undefined };
    const sizes = parseSizes(lines.get('sizes'));
    if (!sizes) throw new BackendUnavailableError('filesystem', `capacity of ${dir}: the files could not be listed`);
    return { fs, sizes };
  }

  private async readMemory(): Promise<ClusterMarker | undefined> {
    const file = this.memoryFile;
    if (file === undefined) return undefined;
    try {
      return parseMarker(await readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}

async function readMarker(path: string): Promise<ClusterMarker | undefined> {
  try {
    return parseMarker(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The marker in `text`, or undefined when it is not one. */
export function parseMarker(text: string): ClusterMarker | undefined {
  try {
    const o = JSON.parse(text) as unknown;
    if (typeof o !== 'object' || o === null) return undefined;
    const { cluster, id } = o as Record<string, unknown>;
    return typeof cluster === 'string' && typeof id === 'string' ? { cluster, id } : undefined;
  } catch {
    return undefined;
  }
}

/** `key rest-of-line` lines of a probe's output, by key. */
function parseLines(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) out.set(line.slice(0, space), line.slice(space + 1));
  }
  return out;
}

/** `statfs <block size> <blocks> <blocks available>` in bytes; undefined when malformed. */
export function parseStatFs(line: string | undefined): StatFs | undefined {
  const parts = (line ?? '').trim().split(/\s+/).map(Number);
  const [bsize, blocks, avail] = parts;
  if (parts.length !== 3 || bsize === undefined || blocks === undefined || avail === undefined || !parts.every((n) => Number.isFinite(n) && n >= 0)) return undefined;
  return { totalBytes: bsize * blocks, freeBytes: bsize * avail };
}

function parseSizes(line: string | undefined): FileSizes | undefined {
  const [volumeBytes, snapshotBytes] = (line ?? '').trim().split(/\s+/).map(Number);
  if (volumeBytes === undefined || snapshotBytes === undefined || !Number.isFinite(volumeBytes) || !Number.isFinite(snapshotBytes)) return undefined;
  return { volumeBytes, snapshotBytes };
}

/** Why a probe did not succeed, in an operator's words. */
export function describeFailure(result: Exclude<ProbeResult, { type: 'ok' }>, dir: string): string {
  switch (result.type) {
    case 'outstanding':
      return `a probe of ${dir} started at ${new Date(result.sinceMs).toISOString()} has not returned (a hung mount?)`;
    case 'timeout':
      return `a probe of ${dir} did not finish within ${result.timeoutMs} ms (a hung or very slow mount?)`;
    case 'error':
      return `a probe of ${dir} could not run: ${result.message}`;
    case 'failed': {
      const step = (result.code !== null && STEP_BY_CODE[result.code]) || `the probe exited ${result.code ?? result.signal ?? '?'}`;
      return result.stderr ? `${step}: ${result.stderr.split('\n').slice(-1)[0] ?? ''}` : step;
    }
  }
}
