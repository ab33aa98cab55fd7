import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { addApiOptions, apiClientFrom } from '../api-client.js';
import { renderColumns, renderJson } from '../output.js';
import type { CommandContext } from '../context.js';

type Row = Record<string, unknown>;

const LOCK_COLUMNS = [
  ['Name', 'name'],
  ['Type', 'type'],
  ['Holder Host', 'holder_host'],
  ['Holder Incarnation', 'holder_incarnation'],
  ['Since', 'since'],
  ['Fencing Revision', 'fencing_revision'],
  ['Waiters', 'waiters'],
] as const;

const MEMBER_COLUMNS = [
  ['Host', 'host'],
  ['Cluster', 'cluster'],
  ['State', 'state'],
  ['Status', 'status'],
  ['Incarnation', 'incarnation'],
  ['Heartbeat At', 'heartbeat_at'],
  ['Lease TTL (s)', 'lease_ttl_seconds'],
  ['Lease Left (s)', 'lease_remaining_seconds'],
  ['Fence', 'fence'],
] as const;

/** A member's dead incarnations in one cell: how many await their fence, else how the last one ended. */
function fenceCell(member: Row): string | undefined {
  const awaiting = Array.isArray(member.awaiting_fence) ? member.awaiting_fence.length : 0;
  if (awaiting > 0) return `awaiting (${awaiting})`;
  const last = member.last_end as { how?: unknown } | null | undefined;
  return typeof last?.how === 'string' ? last.how : undefined;
}

const OP_COLUMNS = [
  ['Type', 'type'],
  ['ID', 'id'],
  ['Op', 'kind'],
  ['Status', 'status'],
  ['Cluster', 'cluster'],
  ['Owner Host', 'owner_host'],
  ['Owner', 'owner_state'],
  ['Attempt', 'attempt'],
  ['Since', 'since'],
  ['Age (s)', 'age_seconds'],
] as const;

const DEAD_LETTER_COLUMNS = [
  ['Reason', 'reason'],
  ['Queue', 'queue'],
  ['By', 'by'],
  ['At', 'at'],
  ['Deliveries', 'deliveries'],
  ['Detail', 'detail'],
] as const;

/** A filter flag's value: absent, or a non-empty string (commander hands `''` through). */
function filterValue(flag: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`${flag} needs a non-empty value`);
  return value;
}

/**
 * `hearth locks`, `hearth members`, `hearth ops` and `hearth dead-letters`: the operator views
 * `GET /hearth/v1/locks`, `/hearth/v1/members`, `/hearth/v1/ops` and `/hearth/v1/dead-letters`,
 * as a table or `--json`. Bad flags exit 2 before any request; an API that
 * cannot be reached exits 1 naming the URL.
 */
export function registerOperatorViews(program: Command, ctx: CommandContext): void {
  addApiOptions(
    program
      .command('ops')
      .description('list unfinished operations, oldest first: owner, whether it is alive, age, status')
      .option('--cluster <name>', 'only this cluster (without @backend: every backend of it)')
      .option('--host <host>', 'only operations owned by this host (without @backend: every backend of it)')
      .option('--kind <kind>', 'only operations of this kind, e.g. extend_volume')
      .option('--owner-state <state>', 'only operations whose owner is alive, dead or queued (nobody\'s yet)'),
  ).action(async (opts: Row) => {
    const ownerState = filterValue('--owner-state', opts.ownerState);
    if (ownerState !== undefined && !['alive', 'dead', 'queued'].includes(ownerState)) throw new UsageError(`--owner-state must be alive, dead or queued, got ${JSON.stringify(ownerState)}`);
    const query = { cluster: filterValue('--cluster', opts.cluster), host: filterValue('--host', opts.host), kind: filterValue('--kind', opts.kind), owner_state: ownerState };
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.getHearth('/ops', query)) as { ops: Row[] };
    ctx.io.out(opts.json === true ? renderJson(body.ops) : body.ops.length === 0 ? 'No unfinished operations.' : renderColumns(OP_COLUMNS, body.ops));
  });

  addApiOptions(
    program
      .command('locks')
      .description('list the locks held now: holder, since when, fencing revision, waiters')
      .option('--host <host>', 'only locks held by this host (without @backend: every backend of it)')
      .option('--type <type>', 'only locks of this type, e.g. delete_volume'),
  ).action(async (opts: Row) => {
    const query = { host: filterValue('--host', opts.host), type: filterValue('--type', opts.type) };
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.getHearth('/locks', query)) as { distributed: boolean; locks: Row[] };
    if (opts.json === true) {
      ctx.io.out(renderJson(body.locks));
      return;
    }
    ctx.io.out(body.locks.length === 0 ? 'No locks held.' : renderColumns(LOCK_COLUMNS, body.locks));
  });

  addApiOptions(
    program
      .command('members')
      .description('list cluster members: state, incarnation, last heartbeat, session lease')
      .option('--cluster <name>', 'only this cluster (without @backend: every backend of it)')
      .option('--host <host>', 'only this host (without @backend: every backend of it)'),
  ).action(async (opts: Row) => {
    const query = { cluster: filterValue('--cluster', opts.cluster), host: filterValue('--host', opts.host) };
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.getHearth('/members', query)) as { members: Row[] };
    if (opts.json === true) {
      ctx.io.out(renderJson(body.members));
      return;
    }
    ctx.io.out(body.members.length === 0 ? 'No members.' : renderColumns(MEMBER_COLUMNS, body.members.map((m) => ({ ...m, fence: fenceCell(m) }))));
  });

  addApiOptions(
    program
      .command('dead-letters')
      .description('list messages in the dead-letter queue: reason, queue, member, deliveries (nothing is removed)')
      .option('--limit <n>', 'at most this many (1–1000, default 100)'),
  ).action(async (opts: Row) => {
    const limit = filterValue('--limit', opts.limit);
    if (limit !== undefined && !/^[1-9][0-9]{0,3}$/.test(limit)) throw new UsageError('--limit needs a whole number from 1 to 1000');
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.getHearth('/dead-letters', { limit })) as { dead_letters: Row[] };
    if (opts.json === true) {
      ctx.io.out(renderJson(body.dead_letters));
      return;
    }
    ctx.io.out(body.dead_letters.length === 0 ? 'No dead-lettered messages.' : renderColumns(DEAD_LETTER_COLUMNS, body.dead_letters));
  });
}
