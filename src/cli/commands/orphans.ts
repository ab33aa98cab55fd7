import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { addApiOptions, apiClientFrom } from '../api-client.js';
import { renderColumns, renderJson } from '../output.js';
import type { CommandContext } from '../context.js';

type Row = Record<string, unknown>;

const ORPHAN_COLUMNS = [
  ['Type', 'type'],
  ['ID', 'id'],
  ['Op', 'kind'],
  ['Status', 'status'],
  ['Cluster', 'cluster'],
  ['Owner Host', 'owner_host'],
  ['Owner Incarnation', 'owner_incarnation'],
  ['Since', 'since'],
  ['Age (s)', 'age_seconds'],
  ['Owner Fence', 'owner_fence'],
] as const;

/** The owner's fence in one cell: `fenced (exec)`, `awaiting` (its takeover waits), … */
function fenceCell(fence: unknown): string | undefined {
  if (typeof fence !== 'object' || fence === null) return undefined;
  const { state, how } = fence as { state?: unknown; how?: unknown };
  return state === 'fenced' && typeof how === 'string' ? `fenced (${how})` : typeof state === 'string' ? state : undefined;
}

const SERVICE_COLUMNS = [
  ['ID', 'id'],
  ['Cluster Name', 'cluster_name'],
  ['Host', 'host'],
  ['Binary', 'binary'],
] as const;

function boolOption(name: string, value: unknown): boolean | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.toLowerCase();
  if (text !== 'true' && text !== 'false') throw new UsageError(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return text === 'true';
}

/** The body of `workers/cleanup` from the command line: only the flags given, as cinderclient sends. */
export function cleanupBody(opts: Record<string, unknown>): Row {
  const body: Row = {};
  const text = (flag: string, key: string, value: unknown): void => {
    if (value === undefined) return;
    if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} needs a value`);
    body[key] = value;
  };
  text('--cluster', 'cluster_name', opts.cluster);
  text('--host', 'host', opts.host);
  text('--binary', 'binary', opts.binary);
  text('--resource-id', 'resource_id', opts.resourceId);
  if (opts.resourceType !== undefined) {
    const type = typeof opts.resourceType === 'string' ? opts.resourceType : '';
    if (!['volume', 'snapshot'].includes(type.toLowerCase())) throw new UsageError(`--resource-type must be Volume or Snapshot, got ${JSON.stringify(type)}`);
    body.resource_type = type[0]?.toUpperCase() + type.slice(1).toLowerCase();
  }
  if (opts.serviceId !== undefined) {
    if (typeof opts.serviceId !== 'string' || !/^\d+$/.test(opts.serviceId)) throw new UsageError(`--service-id must be a whole number, got ${JSON.stringify(opts.serviceId)}`);
    body.service_id = Number(opts.serviceId);
  }
  const isUp = boolOption('--is-up', opts.isUp);
  if (isUp !== undefined) body.is_up = isUp;
  const disabled = boolOption('--disabled', opts.disabled);
  if (disabled !== undefined) body.disabled = disabled;
  return body;
}

/** `hearth orphans` and `hearth work-cleanup`: orphaned operations and Cinder's cleanup, over the API. */
export function registerOrphans(program: Command, ctx: CommandContext): void {
  addApiOptions(
    program
      .command('orphans')
      .description('list orphaned operations: in-flight work whose owner incarnation is no longer alive')
      .option('--cluster <name>', 'only this cluster (without @backend: every backend of it)')
      .option('--host <host>', 'only work of this owner host (without @backend: every backend of it)'),
  ).action(async (opts: Row) => {
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.getHearth('/orphans', { cluster: opts.cluster as string | undefined, host: opts.host as string | undefined })) as { orphans: Row[] };
    ctx.io.out(opts.json === true ? renderJson(body.orphans) : body.orphans.length === 0 ? 'No orphaned operations.' : renderColumns(ORPHAN_COLUMNS, body.orphans.map((o) => ({ ...o, owner_fence: fenceCell(o.fence) }))));
  });

  addApiOptions(
    program
      .command('work-cleanup')
      .description('ask a live member of each selected service\'s cluster to take over and clean up its orphaned operations (Cinder\'s work-cleanup)')
      .option('--cluster <name>', 'services of this cluster')
      .option('--host <host>', 'services of this host')
      .option('--binary <binary>', 'service binary (cinder-volume)')
      .option('--is-up <bool>', 'services that are up (true) or down (false); default: only down services')
      .option('--disabled <bool>', 'services that are disabled (true) or enabled (false)')
      .option('--resource-id <uuid>', 'only this volume or snapshot')
      .option('--resource-type <type>', 'Volume or Snapshot')
      .option('--service-id <id>', 'the service with this id (see hearth service list)'),
  ).action(async (opts: Row) => {
    const body = cleanupBody(opts);
    const client = await apiClientFrom(opts, ctx.env);
    const res = (await client.post('/workers/cleanup', body)) as { cleaning: Row[]; unavailable: Row[] };
    if (opts.json === true) {
      ctx.io.out(renderJson(res));
      return;
    }
    const out: string[] = [];
    if (res.cleaning.length > 0) out.push('Following services will be cleaned:', renderColumns(SERVICE_COLUMNS, res.cleaning));
    if (res.unavailable.length > 0) out.push('There are no alternative nodes to do cleanup for the following services:', renderColumns(SERVICE_COLUMNS, res.unavailable));
    if (out.length === 0) out.push('No cleanable services matched cleanup criteria.');
    ctx.io.out(out.join('\n'));
  });
}
