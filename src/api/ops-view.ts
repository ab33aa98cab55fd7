import type { FastifyInstance } from 'fastify';
import type { Membership } from '../membership/membership.js';
import { matchesHost } from '../identity.js';
import type { OpRecord } from '../state/records.js';
import type { StateStore } from '../state/state-store.js';
import { formatCinderTime } from './cinder-time.js';
import { parseViewQuery } from './operator-views.js';
import type { RouteModule } from './server.js';

/** Whose an unfinished op is: a live member's, a dead incarnation's (an orphan), or nobody's yet. */
export type OwnerState = 'alive' | 'dead' | 'queued';

function ownerStateOf(op: OpRecord, alive: ReadonlySet<string>): OwnerState {
  if (op.owner === null) return 'queued';
  return alive.has(op.owner.incarnation) ? 'alive' : 'dead';
}

/** What the ops view reads. */
export interface OpsViewOptions {
  readonly store: Pick<StateStore, 'listOps'>;
  readonly membership: Pick<Membership, 'snapshot'>;
  readonly now: () => number;
}

/** One unfinished op as `GET /hearth/v1/ops` shows it. */
export function opJson(op: OpRecord, ownerState: OwnerState, nowMs: number): Record<string, unknown> {
  return {
    type: op.type,
    id: op.id,
    op_id: op.opId,
    kind: op.kind,
    status: op.status,
    cluster: op.cluster,
    owner_host: op.owner?.host ?? null,
    owner_incarnation: op.owner?.incarnation ?? null,
    owner_state: ownerState,
    attempt: op.attempt,
    since: formatCinderTime(op.createdAt),
    age_seconds: Math.max(0, Math.round((nowMs - op.createdAt) / 1000)),
    force: op.params.force === true,
  };
}

/**
 * `GET /hearth/v1/ops` (`hearth ops`): every unfinished operation, oldest first, with its owner,
 * whether that owner is alive, its age and status — the view of work stuck on a live member
 * that `hearth orphans` is for dead owners. Filters: `cluster`, `host` (the owner's; Cinder's
 * host matching), `kind`, `owner_state` (`alive`, `dead`, `queued`). Read-only; a reader token
 * may use it.
 *
 * Failure semantics: etcd unreachable → 503 (nothing is served from a stale copy); a bad
 * filter → 400 before anything is read. It lists the ops (in flight only: a few), never the
 * resources.
 */
export function opsViewRoutes(options: OpsViewOptions): RouteModule {
  return (app: FastifyInstance) => {
    app.get('/hearth/v1/ops', { config: { skipVersion: true } }, async (req) => {
      const q = parseViewQuery(req.query as Record<string, string | string[] | undefined>, ['cluster', 'host', 'kind', 'owner_state']);
      const [ops, snapshot] = await Promise.all([options.store.listOps(), options.membership.snapshot()]);
      const alive = new Set(snapshot.alive.map((a) => a.incarnation));
      const now = options.now();
      const rows = ops
        .map((op) => ({ op, state: ownerStateOf(op, alive) }))
        .filter(
          ({ op, state }) =>
            (!q.cluster || matchesHost(op.cluster, q.cluster)) &&
            (!q.host || (op.owner !== null && matchesHost(op.owner.host, q.host))) &&
            (!q.kind || op.kind === q.kind) &&
            (!q.owner_state || state === q.owner_state),
        );
      return { ops: rows.map(({ op, state }) => opJson(op, state, now)) };
    });
  };
}
