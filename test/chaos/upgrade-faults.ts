/**
 * The upgrade fault: a worker rolled back to the first release and forward again in the middle
 * of the stream, as a `kubectl rollout undo` and a new rollout do it — SIGTERM, the release's
 * build started on the same host and left to run jobs for a while beside the current tree's
 * workers, SIGTERM, the current tree started again. The run's invariants hold across it (nothing
 * lost, nothing run twice, no dead letter, every stop exiting 0), and {@link releaseSwapRow}
 * checks that the release really served: it came up ready each time and made driver calls.
 */
import type { JournalReport } from '../../src/drivers/fake-journal.js';
import type { ChaosCluster } from './cluster.js';
import { row, type InvariantRow } from './rows.js';
import { sleep } from './stream.js';

/** One swap: the release's run on `host` and how long it lasted (epoch ms). */
export interface ReleaseSwap {
  readonly host: string;
  readonly from: number;
  readonly to: number;
  /** Process id of the release's run (undefined: it never started). */
  readonly releasePid?: number;
  /** Why it did not run, when it did not. */
  readonly error?: string;
}

/** Swaps `host` to the release in `cluster.releaseRoot` for `holdMs`, then back. */
export async function releaseSwap(cluster: ChaosCluster, host: string, holdMs: number): Promise<ReleaseSwap> {
  const root = cluster.releaseRoot;
  const from = Date.now();
  if (root === undefined) return { host, from, to: from, error: 'no release build' };
  await cluster.stopWorker(host);
  let releasePid: number | undefined;
  let error: string | undefined;
  try {
    releasePid = (await cluster.startWorker(host, root)).pid;
    await sleep(holdMs);
    await cluster.stopWorker(host);
  } catch (err) {
    error = (err as Error).message.split('\n')[0];
  }
  await cluster.startWorker(host);
  return { host, from, to: Date.now(), ...(releasePid === undefined ? {} : { releasePid }), ...(error === undefined ? {} : { error }) };
}

/** The row: every swap started the release, and the release made driver calls. */
export function releaseSwapRow(swaps: readonly ReleaseSwap[], journal: JournalReport, pidsByCall: ReadonlyMap<number, number>): InvariantRow[] {
  if (swaps.length === 0) return [];
  const failed = swaps.filter((s) => s.releasePid === undefined || s.error !== undefined);
  const calls = swaps.reduce((n, s) => n + (s.releasePid === undefined ? 0 : (pidsByCall.get(s.releasePid) ?? 0)), 0);
  const detail = `${swaps.length} swap(s) to the first release and back: ${failed.length === 0 ? 'each started ready' : `NOT started: ${failed.map((s) => `${s.host}: ${s.error ?? 'no process'}`).join('; ')}`}; the release made ${calls} driver call(s); journal ${journal.malformed === 0 ? 'readable' : `${journal.malformed} malformed line(s)`}`;
  return [row('upgrade: the first release served beside the current tree', failed.length === 0 && calls > 0 && journal.malformed === 0, detail)];
}
