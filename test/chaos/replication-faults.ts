/**
 * The replication faults (issue 17): a freeze of the whole cluster for a while, then a thaw; and
 * a failover to the fake driver's simulated target, the cluster enabled again so the stream goes
 * on there, then a failback. Their invariant, from the fake driver's journal: while a cluster is
 * failed over, no member writes to the old primary — no successful write call that started after
 * the failover began names `default` as its backend or as a replica, until the failback began.
 */
import { backendWrites, type JournalCall, type JournalEntry } from '../../src/drivers/fake-journal.js';
import { type ChaosCluster, CLUSTER_ID, REPLICA_ID } from './cluster.js';
import { few, type InvariantRow, row } from './rows.js';
import { call, sleep } from './stream.js';

/** What one replication fault did (epoch ms). */
export interface ReplicationFault {
  readonly kind: 'freeze' | 'failover';
  readonly from: number;
  readonly to: number;
  /** What went wrong, if anything (a refused command, a status never reached). */
  readonly problem?: string;
}

const PATH = '/v3/admin';

async function command(cluster: ChaosCluster, action: string, body: Record<string, unknown>): Promise<number> {
  return (await call(cluster.api.apiUrl, 'PUT', `${PATH}/os-services/${action}`, body, { version: 'volume 3.26' })).status;
}

async function clusterRecord(cluster: ChaosCluster): Promise<Record<string, unknown> | undefined> {
  const res = await call(cluster.api.apiUrl, 'GET', `${PATH}/clusters/${CLUSTER_ID}`, undefined, { version: 'volume 3.26' });
  return res.status === 200 ? (res.body as { cluster: Record<string, unknown> }).cluster : undefined;
}

/** Polls the cluster record until `done` holds (bounded); false when it never did. */
async function until(cluster: ChaosCluster, done: (c: Record<string, unknown>) => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const c = await clusterRecord(cluster);
    if (c && done(c)) return true;
    await sleep(200);
  }
  return false;
}

/** Freezes the cluster for `holdMs`, then thaws it. */
export async function freezeFault(cluster: ChaosCluster, holdMs: number): Promise<ReplicationFault> {
  const from = Date.now();
  const frozen = await command(cluster, 'freeze', { cluster: CLUSTER_ID });
  await sleep(holdMs);
  const thawed = await command(cluster, 'thaw', { cluster: CLUSTER_ID });
  const problem = frozen !== 200 || thawed !== 200 ? `freeze answered ${frozen}, thaw ${thawed}` : undefined;
  return { kind: 'freeze', from, to: Date.now(), ...(problem ? { problem } : {}) };
}

/** Fails over to the target, lets the stream run there for `holdMs` (the cluster enabled again), then fails back. */
export async function failoverFault(cluster: ChaosCluster, holdMs: number): Promise<ReplicationFault> {
  const from = Date.now();
  const problems: string[] = [];
  const started = await command(cluster, 'failover', { cluster: CLUSTER_ID, backend_id: REPLICA_ID });
  if (started !== 202) problems.push(`failover answered ${started}`);
  else if (!(await until(cluster, (c) => c.replication_status === 'failed-over', 60_000))) problems.push('never failed-over');
  // Cinder disables a failed-over cluster; the operator lets it take new volumes on the target.
  await call(cluster.api.apiUrl, 'PUT', `${PATH}/clusters/enable`, { name: CLUSTER_ID, binary: 'cinder-volume' }, { version: 'volume 3.26' });
  await sleep(holdMs);
  const back = await command(cluster, 'failover', { cluster: CLUSTER_ID, backend_id: 'default' });
  if (back !== 202) problems.push(`failback answered ${back}`);
  else if (!(await until(cluster, (c) => c.replication_status === 'enabled' && c.frozen === false, 60_000))) problems.push('never failed back');
  await call(cluster.api.apiUrl, 'PUT', `${PATH}/clusters/enable`, { name: CLUSTER_ID, binary: 'cinder-volume' }, { version: 'volume 3.26' });
  return { kind: 'failover', from, to: Date.now(), ...(problems.length ? { problem: problems.join('; ') } : {}) };
}

/** The windows in which the primary must see no write: from each promotion of a target to the next failback (journal times). */
export function failedOverWindows(entries: readonly JournalEntry[]): { from: number; to: number }[] {
  const promotions = entries.filter((e) => e.call === 'failover' && e.event === 'start').sort((a, b) => a.t - b.t);
  const windows: { from: number; to: number }[] = [];
  for (const [i, p] of promotions.entries()) {
    if (p.resource === 'backend:default') continue;
    const back = promotions.slice(i + 1).find((q) => q.resource === 'backend:default');
    windows.push({ from: p.t, to: back?.t ?? Number.POSITIVE_INFINITY });
  }
  return windows;
}

/** The invariant rows of the replication faults. */
export function replicationRows(faults: readonly ReplicationFault[], entries: readonly JournalEntry[], calls: readonly JournalCall[]): InvariantRow[] {
  if (faults.length === 0) return [];
  const rows: InvariantRow[] = [];
  const problems = faults.filter((f) => f.problem).map((f) => `${f.kind}: ${f.problem ?? ''}`);
  rows.push(row('replication: every freeze thawed, every failover failed over and back', problems.length === 0, problems.length ? few(problems) : `${faults.length} fault(s)`));
  const failovers = faults.filter((f) => f.kind === 'failover').length;
  if (failovers > 0) {
    const windows = failedOverWindows(entries);
    const violations = windows.flatMap((w) =>
      backendWrites(calls, 'default', w.from)
        .filter((c) => c.start > w.from && c.start < w.to)
        .map((c) => `${c.call} ${c.resource} by ${c.member} at epoch ${String(c.epoch)} (${c.backend === 'default' ? 'on' : 'replica'} the old primary)`),
    );
    rows.push(
      row(
        'replication: no member writes to the old primary while failed over',
        violations.length === 0 && windows.length >= failovers,
        violations.length ? few(violations) : `${windows.length} window(s), ${calls.filter((c) => windows.some((w) => c.start > w.from && c.start < w.to)).length} calls in them`,
      ),
    );
  }
  return rows;
}
