/**
 * The operator's members view, pure: one row per service record (an expected member) and per
 * alive entry, joined by host — up while its alive entry exists, with its incarnation, last
 * heartbeat and, on etcd, its session lease's times.
 */
import type { LeaseTtl } from './lease-ttl.js';
import type { MembershipSnapshot } from './records.js';

/** One member as `GET /hearth/v1/members` shows it. */
export interface MemberRow {
  readonly host: string;
  readonly cluster: string | null;
  readonly binary: string | null;
  readonly zone: string | null;
  readonly version: string | null;
  readonly up: boolean;
  readonly disabled: boolean;
  /** The live incarnation; null while down. */
  readonly incarnation: string | null;
  /** Create revision of its alive entry (the fence of its writes); null while down. */
  readonly aliveRevision: string | null;
  /** Last heartbeat: the alive entry's while up, else the service record's last one. */
  readonly heartbeatAtMs: number | null;
  readonly startedAtMs: number | null;
  readonly lease: LeaseTtl | null;
}

/** Rows sorted by host; `leases` by incarnation. */
export function buildMemberRows(snapshot: MembershipSnapshot, leases: ReadonlyMap<string, LeaseTtl>): MemberRow[] {
  const alive = new Map(snapshot.alive.map((a) => [a.host, a]));
  const rows: MemberRow[] = snapshot.services.map((s) => {
    const live = alive.get(s.host);
    alive.delete(s.host);
    return {
      host: s.host,
      cluster: s.cluster,
      binary: s.binary,
      zone: s.zone,
      version: s.version,
      up: live !== undefined,
      disabled: s.disabled,
      incarnation: live?.incarnation ?? null,
      aliveRevision: live?.aliveRevision ?? null,
      heartbeatAtMs: live?.heartbeatAtMs ?? s.heartbeatAtMs,
      startedAtMs: s.startedAtMs,
      lease: (live && leases.get(live.incarnation)) ?? null,
    };
  });
  // An alive entry without a service record (written in one transaction, so only ever seen
  // when a record was deleted by hand): still a live member.
  for (const a of alive.values()) {
    rows.push({
      host: a.host,
      cluster: a.cluster,
      binary: null,
      zone: null,
      version: null,
      up: true,
      disabled: false,
      incarnation: a.incarnation,
      aliveRevision: a.aliveRevision,
      heartbeatAtMs: a.heartbeatAtMs,
      startedAtMs: null,
      lease: leases.get(a.incarnation) ?? null,
    });
  }
  return rows.sort((x, y) => (x.host < y.host ? -1 : x.host > y.host ? 1 : 0));
}
