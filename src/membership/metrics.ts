import { Counter, Gauge, type Registry } from 'prom-client';
import type { MembershipSnapshot } from './records.js';

/** Membership's Prometheus instruments (names as in docs/metrics.md). */
export class MembershipMetrics {
  /** `hearth_cluster_members{cluster,state=expected|alive}`. */
  readonly members: Gauge<'cluster' | 'state'>;
  /** `hearth_membership_lease_renewals_total{result=ok|error}`: heartbeats of the alive key. */
  readonly renewals: Counter<'result'>;
  /** `hearth_membership_lease_last_renewal_timestamp_seconds`. */
  readonly lastRenewal: Gauge;

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
    // Both series exist from the start, so rate() works before the first failure.
    this.renewals.inc({ result: 'ok' }, 0);
    this.renewals.inc({ result: 'error' }, 0);
  }

  /** Records one heartbeat. */
  renewal(ok: boolean, atMs?: number): void {
    this.renewals.inc({ result: ok ? 'ok' : 'error' });
    if (ok && atMs !== undefined) this.lastRenewal.set(atMs / 1000);
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
