import type { Command } from 'commander';
import { CoordinatorError, UsageError } from '../../errors.js';
import { addApiOptions, apiClientFrom, type ApiClient } from '../api-client.js';
import { escapeForTerminal, renderColumns, renderJson } from '../output.js';
import type { CommandContext } from '../context.js';

type Row = Record<string, unknown>;

const PROCESS_COLUMNS = [
  ['Id', 'id'],
  ['Cluster', 'cluster'],
  ['Roles', 'roles'],
  ['Release', 'release'],
  ['Messages', 'messages'],
  ['Schemas', 'schema'],
  ['Started At', 'started_at'],
] as const;

const MESSAGE_COLUMNS = [
  ['Cluster', 'cluster'],
  ['Message Version', 'version'],
  ['Workers Read', 'worker_version'],
  ['Workers', 'workers'],
  ['Pinned By', 'pinned_by'],
] as const;

/** How often `finalize --wait` reads the status while the migration runs. */
const WAIT_POLL_MS = 1_000;

interface Status {
  readonly this_process: Row;
  readonly schema: { version: number; floor: number; finalized_at: string | null; finalized_by: string | null; migration: Row | null };
  readonly next_schema: { version: number; can_finalize: boolean; blocked_by: string[]; reasons: string[] };
  readonly message_versions: Row[];
  readonly processes: Row[];
  readonly mixed_since: Record<string, string | null>;
}

function describeStatus(s: Status): string {
  const lines: string[] = [];
  const m = s.schema.migration;
  const blocked = m?.blocked_by_unreadable as { count: number; keys: string[] } | null | undefined;
  const migration =
    m === null
      ? 'no data migration'
      : m.done === true
        ? `data migration from ${String(m.from)} done (${String(m.migrated)} records)`
        : blocked
          ? `data migration from ${String(m.from)} BLOCKED: ${blocked.count} record(s) this build cannot read (${blocked.keys.slice(0, 3).join(', ')}${blocked.count > 3 ? ', …' : ''}); repair or delete them, then run hearth upgrade finalize again`
          : `data migration from ${String(m.from)} running: ${String(m.migrated)} records so far, pass ${Number(m.passes) + 1}`;
  lines.push(`Record schema: ${s.schema.version} (${s.schema.finalized_at === null ? 'as the cluster started' : `finalized ${s.schema.finalized_at}`}; ${migration})`);
  const next = s.next_schema;
  lines.push(next.can_finalize ? `Schema ${next.version}: can be finalized now (hearth upgrade finalize)` : `Schema ${next.version}: blocked`);
  for (const reason of next.reasons) lines.push(`  - ${escapeForTerminal(reason)}`);
  for (const [cluster, since] of Object.entries(s.mixed_since)) if (since !== null) lines.push(`Cluster ${escapeForTerminal(cluster)} has run more than one release since ${since}`);
  lines.push('', 'Message versions:', renderColumns(MESSAGE_COLUMNS, s.message_versions.map((r) => ({ ...r, pinned_by: (r.pinned_by as string[]).join(', ') }))));
  lines.push('', 'Live processes:', renderColumns(PROCESS_COLUMNS, s.processes.map((r) => ({ ...r, roles: (r.roles as string[]).join('+') }))));
  return lines.join('\n');
}

async function status(client: ApiClient): Promise<Status> {
  return ((await client.getHearth('/upgrade')) as { upgrade: Status }).upgrade;
}

/**
 * `hearth upgrade status`: every live process with its release and the versions it reads and
 * writes, the message version of each cluster and who pins it, the record schema, its data
 * migration and what blocks raising it. `hearth upgrade finalize [--schema N] [--wait]`: raises
 * the record schema once every live process supports it and starts the data migration (refused,
 * naming the blocking processes, otherwise); `--wait` returns once the migration is done.
 * See docs/upgrades.md.
 */
export function registerUpgrade(program: Command, ctx: CommandContext): void {
  const upgrade = program.command('upgrade').description('rolling upgrades: versions of the live processes, the record schema, finalize');
  addApiOptions(upgrade.command('status').description('show each live process’s release and versions, the negotiated message versions, the record schema and what blocks raising it')).action(
    async (opts: Row) => {
      const s = await status(await apiClientFrom(opts, ctx.env));
      ctx.io.out(opts.json === true ? renderJson(s) : describeStatus(s));
    },
  );
  addApiOptions(
    upgrade
      .command('finalize')
      .description('raise the record schema once every live process supports it, and migrate the records (rollback to the previous release is impossible after this)')
      .option('--schema <n>', 'the schema to raise to (default: the next one)')
      .option('--wait', 'wait until the data migration is done')
      .option('--timeout-ms <ms>', 'with --wait: give up after this long', '600000'),
  ).action(async (opts: Row) => {
    const schema = opts.schema === undefined ? undefined : Number(opts.schema);
    if (schema !== undefined && (!Number.isSafeInteger(schema) || schema < 1)) throw new UsageError(`--schema must be a positive integer, got ${JSON.stringify(opts.schema)}`);
    const timeoutMs = Number(opts.timeoutMs);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) throw new UsageError(`--timeout-ms must be a non-negative integer, got ${JSON.stringify(opts.timeoutMs)}`);
    const client = await apiClientFrom(opts, ctx.env);
    let s = ((await client.postHearth('/upgrade/finalize', schema === undefined ? {} : { schema })) as { upgrade: Status }).upgrade;
    if (opts.json !== true) ctx.io.out(`Record schema ${s.schema.version} is finalized; migrating the records.`);
    const deadline = Date.now() + timeoutMs;
    while (opts.wait === true && s.schema.migration !== null && s.schema.migration.done !== true) {
      const blocked = s.schema.migration.blocked_by_unreadable as { count: number; keys: string[] } | null | undefined;
      if (blocked) throw new CoordinatorError('VERSION_UNSUPPORTED', `the data migration is blocked by ${blocked.count} record(s) this build cannot read (${blocked.keys.slice(0, 3).join(', ')}); repair or delete them, then run hearth upgrade finalize again`);
      if (Date.now() >= deadline) throw new CoordinatorError('BACKEND_UNAVAILABLE', `the data migration was not done within ${timeoutMs} ms; it goes on (hearth upgrade status shows it)`, { retryable: true });
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
      s = await status(client);
    }
    if (opts.json === true) ctx.io.out(renderJson(s));
    else if (opts.wait === true) ctx.io.out(`The data migration is done: ${Number(s.schema.migration?.migrated ?? 0)} records rewritten.`);
  });
}
