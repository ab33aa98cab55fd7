import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterRecord, MembershipSnapshot } from './records.js';

/** How a failover run ended, the label of `hearth_replication_failovers_total`. */
export type FailoverResult = 'failed-over' | 'failed-back' | 'invalid-target' | 'error';

/** Membership's Prometheus instruments (names as in docs/metrics.md). */
export class MembershipMetrics {
  /** `hearth_cluster_members{cluster,state=expected|alive}`. */
  readonly members: Gauge<'cluster' | 'state'>;
  /** `hearth_membership_lease_renewals_total{result=ok|error}`: heartbeats of the alive key. */
  readonly renewals: Counter<'result'>;
  /** `hearth_membership_lease_last_renewal_timestamp_seconds`. */
  readonly lastRenewal: Gauge;
  /** `hearth_cluster_frozen{cluster}`: 1 while the cluster is frozen. */
  readonly frozen: Gauge<'cluster'>;
  /** `hearth_cluster_failed_over{cluster}`: 1 while the cluster serves from a replication target. */
  readonly failedOver: Gauge<'cluster'>;
  /** `hearth_cluster_backend_epoch{cluster}`: the backend epoch the cluster record names. */
  readonly backendEpoch: Gauge<'cluster'>;
  /** `hearth_replication_failovers_total{result}`: failover runs this process finished. */
  readonly failovers: Counter<'result'>;

  constructor(registry: Registry) {
    this.members = new Gauge({
      name: 'hearth_cluster_members',
      help: 'Members of each cluster: expected (service records) and alive (alive keys).',
      labelNames: ['cluster', 'state'] as const,
      registers: [registry],
    });
    this.renewals = new Counter({
      name: 'hearth_membership_lease_renewals_total',
      help: 'Heartbeats of this member\'s alive key, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.lastRenewal = new Gauge({
      name: 'hearth_membership_lease_last_renewal_timestamp_seconds',
      help: 'When this member last refreshed its alive key (seconds since the epoch).',
      registers: [registry],
    });
    this.frozen = new Gauge({ name: 'hearth_cluster_frozen', help: 'Whether the cluster is frozen (1) or not (0), as a worker of it last saw its record.', labelNames: ['cluster'] as const, registers: [registry] });
    this.failedOver = new Gauge({
      name: 'hearth_cluster_failed_over',
      help: 'Whether the cluster serves from a replication target (1: failed over, failing over or in failover-error) or its primary (0).',
      labelNames: ['cluster'] as const,
      registers: [registry],
    });
    this.backendEpoch = new Gauge({ name: 'hearth_cluster_backend_epoch', help: 'The backend epoch of the cluster record (raised by each failover and failback).', labelNames: ['cluster'] as const, registers: [registry] });
    this.failovers = new Counter({ name: 'hearth_replication_failovers_total', help: 'Replication failover runs finished by this process, by result.', labelNames: ['result'] as const, registers: [registry] });
    for (const result of ['failed-over', 'failed-back', 'invalid-target', 'error'] satisfies FailoverResult[]) this.failovers.inc({ result }, 0);
    // Both series exist from the start, so rate() works before the first failure.
    this.renewals.inc({ result: 'ok' }, 0);
    this.renewals.inc({ result: 'error' }, 0);
  }

  /** Records one heartbeat. */
  renewal(ok: boolean, atMs?: number): void {
    this.renewals.inc({ result: ok ? 'ok' : 'error' });
    if (ok && atMs !== undefined) this.lastRenewal.set(atMs / 1000);
  }

  /** Sets the replication gauges of `record`'s cluster. */
  observeCluster(record: ClusterRecord): void {
    const cluster = record.name;
    this.frozen.set({ cluster }, record.frozen ? 1 : 0);
    const away = record.activeBackendId !== null || record.replicationStatus === 'failing-over' || record.replicationStatus === 'failover-error';
    this.failedOver.set({ cluster }, away ? 1 : 0);
    this.backendEpoch.set({ cluster }, record.backendEpoch);
  }

  /** Sets the member counts of every cluster in `snapshot` (clusters that vanished are dropped). */
  observe(snapshot: MembershipSnapshot): void {
    const counts = memberCounts(snapshot);
    this.members.reset();
    for (const [cluster, c] of counts) {
      this.members.set({ cluster, state: 'expected' }, c.expected);
      this.members.set({ cluster, state: 'alive' }, c.alive);
    }
  }
}

/** Per cluster: service records naming it (expected) and those with an alive entry (alive). Pure. */
export function memberCounts(snapshot: MembershipSnapshot): Map<string, { expected: number; alive: number }> {
  const alive = new Set(snapshot.alive.map((a) => a.host));
  const counts = new Map<string, { expected: number; alive: number }>();
  for (const c of snapshot.clusters) counts.set(c.name, { expected: 0, alive: 0 });
  for (const s of snapshot.services) {
    if (s.cluster === null) continue;
    const c = counts.get(s.cluster) ?? { expected: 0, alive: 0 };
    c.expected += 1;
    if (alive.has(s.host)) c.alive += 1;
    counts.set(s.cluster, c);
  }
  return counts;
}
