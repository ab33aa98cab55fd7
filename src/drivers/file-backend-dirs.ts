/**
 * The file driver's backend directories — the primary and, with replication, each target —
 * each with its own health check (`file-backend-check.ts`), prepared once (its directory made,
 * its cluster marker adopted or written) and prepared again after a failure: a target whose
 * site is down while a member starts is prepared when it is first served or checked.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { FenceMarkers } from './fence-markers.js';
import { FileBackendCheck, type FileBackendCheckOptions } from './file-backend-check.js';
import type { ProbeRunner } from './probe-runner.js';
import type { ReplicationTarget } from './replication-targets.js';
import { PRIMARY_BACKEND_ID } from './volume-driver.js';

/** One backend directory. */
export interface BackendDir {
  readonly backendId: string;
  readonly dir: string;
  readonly check: FileBackendCheck;
}

interface Entry extends BackendDir {
  readonly stateDir: string | undefined;
  ready: Promise<void> | undefined;
}

/** What every directory's check shares. */
export type SharedCheckOptions = Omit<FileBackendCheckOptions, 'dir' | 'stateDir'>;

/** The file driver's options these are made of. */
export interface BackendDirOptions {
  readonly dir: string;
  readonly stateDir?: string;
  readonly cluster?: string;
  readonly member?: string;
  readonly probeTimeoutMs?: number;
  readonly minFreeBytes?: number;
  readonly replicationTargets?: readonly ReplicationTarget[];
}

/** See the module doc. */
export class FileBackendDirs {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: SharedCheckOptions,
    private readonly probes: ProbeRunner,
  ) {}

  /**
   * The primary (`default`, remembered in `stateDir`) and each target (remembered in
   * `<stateDir>/replica-<backend_id>`).
   *
   * @throws InvalidInputError when a target is the primary directory, or two targets one place
   */
  static of(options: BackendDirOptions, probes: ProbeRunner): FileBackendDirs {
    const targets = options.replicationTargets ?? [];
    const places = [options.dir, ...targets.map((t) => t.location)].map((p) => resolve(p));
    const twice = places.filter((p, i) => places.indexOf(p) !== i);
    if (twice.length > 0) throw new InvalidInputError(`file driver: ${[...new Set(twice)].join(', ')} is both the primary directory and a replication target, or two targets`);
    const dirs = new FileBackendDirs(
      {
        cluster: options.cluster ?? 'hearth@default',
        member: options.member ?? `pid-${process.pid}`,
        probeTimeoutMs: options.probeTimeoutMs ?? 5_000,
        minFreeBytes: options.minFreeBytes ?? 1024 * 1024,
      },
      probes,
    );
    dirs.add(PRIMARY_BACKEND_ID, options.dir, options.stateDir);
    for (const t of targets) dirs.add(t.backendId, t.location, options.stateDir === undefined ? undefined : join(options.stateDir, `replica-${t.backendId}`));
    return dirs;
  }

  /** Adds a backend; `stateDir` is where this member remembers the directory's cluster marker. */
  add(backendId: string, dir: string, stateDir: string | undefined): void {
    const check = new FileBackendCheck({ ...this.options, dir, ...(stateDir === undefined ? {} : { stateDir }) }, this.probes);
    this.entries.set(backendId, { backendId, dir, stateDir, check, ready: undefined });
  }

  /** Every backend, the primary first. */
  all(): BackendDir[] {
    return [...this.entries.values()];
  }

  /** @throws InvalidInputError for an unknown backend */
  get(backendId: string): BackendDir {
    return this.entry(backendId);
  }

  /** Creates the directory and prepares its check, once (again after a failure). */
  async prepared(backendId: string): Promise<void> {
    const e = this.entry(backendId);
    e.ready ??= (async () => {
      await mkdir(e.dir, { recursive: true });
      if (e.stateDir !== undefined) await mkdir(e.stateDir, { recursive: true });
      await e.check.prepare();
    })();
    try {
      await e.ready;
    } catch (err) {
      e.ready = undefined;
      throw err;
    }
  }

  /** A backend's check, prepared. @throws Error saying why it cannot be prepared */
  async preparedCheck(backendId: string): Promise<FileBackendCheck> {
    const { dir, check } = this.entry(backendId);
    try {
      await this.prepared(backendId);
    } catch (err) {
      throw new Error(`backend ${backendId} (${dir}) cannot be prepared: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return check;
  }

  private entry(backendId: string): Entry {
    const e = this.entries.get(backendId);
    if (e === undefined) throw new InvalidInputError(`unknown backend ${JSON.stringify(backendId)}`);
    return e;
  }
}

/** Fence markers live on the directory the calls work in. */
export function fencesOf(dir: string): FenceMarkers {
  return new FenceMarkers(join(dir, '.hearth', 'fenced'));
}
