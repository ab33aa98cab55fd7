import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { addApiOptions, apiClientFrom } from '../api-client.js';
import { renderJson, renderTable } from '../output.js';
import type { CommandContext } from '../context.js';

type Row = Record<string, unknown>;

const SUMMARY_COLUMNS = [
  ['Name', 'name'],
  ['Binary', 'binary'],
  ['State', 'state'],
  ['Status', 'status'],
] as const;
const DETAIL_COLUMNS = [
  ...SUMMARY_COLUMNS,
  ['Num Hosts', 'num_hosts'],
  ['Num Down Hosts', 'num_down_hosts'],
  ['Last Heartbeat', 'last_heartbeat'],
  ['Disabled Reason', 'disabled_reason'],
  ['Created At', 'created_at'],
  ['Updated At', 'updated_at'],
] as const;

/** `true`/`false` (any case), as the API takes them; anything else is a usage error. */
function boolOption(name: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.toLowerCase();
  if (text !== 'true' && text !== 'false') throw new UsageError(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return text;
}

function countOption(name: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a whole number, got ${JSON.stringify(value)}`);
  return value;
}

function text(value: unknown): unknown {
  return value === null || value === undefined || value === '' ? '-' : value;
}

/** One object as a two-column table. */
export function renderProperties(item: Row): string {
  return renderTable(
    ['Property', 'Value'],
    Object.entries(item).map(([k, v]) => [k, text(v)]),
  );
}

function renderClusters(items: Row[], detailed: boolean): string {
  const columns = detailed ? DETAIL_COLUMNS : SUMMARY_COLUMNS;
  return renderTable(
    columns.map(([head]) => head),
    items.map((c) => columns.map(([, key]) => text(c[key]))),
  );
}

/** `hearth cluster list|show|enable|disable|failover|freeze|thaw`: Cinder's cluster and service APIs over HTTP. */
export function registerCluster(program: Command, ctx: CommandContext): void {
  const cluster = program.command('cluster').description('list, show, enable, disable, fail over, freeze and thaw clusters (through the API)');

  addApiOptions(
    cluster
      .command('list')
      .description('list clusters')
      .option('--detailed', 'show host counts, heartbeat and times')
      .option('--name <name>', 'cluster name; without @backend it matches every backend of the cluster')
      .option('--binary <binary>', 'service binary, e.g. cinder-volume')
      .option('--is-up <bool>', 'only clusters that are up (true) or down (false)')
      .option('--disabled <bool>', 'only disabled (true) or enabled (false) clusters')
      .option('--num-hosts <n>', 'only clusters with this many hosts')
      .option('--num-down-hosts <n>', 'only clusters with this many down hosts'),
  ).action(async (opts: Record<string, unknown>) => {
    const query = {
      name: opts.name as string | undefined,
      binary: opts.binary as string | undefined,
      is_up: boolOption('--is-up', opts.isUp),
      disabled: boolOption('--disabled', opts.disabled),
      num_hosts: countOption('--num-hosts', opts.numHosts),
      num_down_hosts: countOption('--num-down-hosts', opts.numDownHosts),
    };
    const detailed = opts.detailed === true;
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.get(detailed ? '/clusters/detail' : '/clusters', query)) as { clusters: Row[] };
    ctx.io.out(opts.json === true ? renderJson(body.clusters) : renderClusters(body.clusters, detailed));
  });

  addApiOptions(
    cluster
      .command('show')
      .description('show one cluster in detail')
      .argument('<name>', 'cluster name, <cluster>@<backend>')
      .option('--binary <binary>', 'service binary', 'cinder-volume'),
  ).action(async (name: string, opts: Record<string, unknown>) => {
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.get(`/clusters/${encodeURIComponent(name)}`, { binary: opts.binary as string })) as { cluster: Row };
    ctx.io.out(opts.json === true ? renderJson(body.cluster) : renderProperties(body.cluster));
  });

  const update = (action: 'enable' | 'disable', command: Command): void => {
    addApiOptions(command.argument('<name>', 'cluster name, <cluster>@<backend>').option('--binary <binary>', 'service binary', 'cinder-volume')).action(
      async (name: string, opts: Record<string, unknown>) => {
        const body: Row = { name, binary: opts.binary };
        if (action === 'disable' && typeof opts.reason === 'string') body.disabled_reason = opts.reason;
        const client = await apiClientFrom(opts, ctx.env);
        const res = (await client.put(`/clusters/${action}`, body)) as { cluster: Row };
        ctx.io.out(opts.json === true ? renderJson(res.cluster) : renderProperties(res.cluster));
      },
    );
  };
  update('enable', cluster.command('enable').description('let the scheduler give the cluster new volumes again'));
  update(
    'disable',
    cluster
      .command('disable')
      .description('give the cluster no new volumes (work on its existing volumes goes on)')
      .option('--reason <text>', 'why, shown as disabled_reason'),
  );

  registerReplication(cluster, ctx);
}

/**
 * `hearth cluster failover|freeze|thaw <name>`: Cinder's `os-services/failover` (3.26) and
 * `freeze`/`thaw` with `cluster`. Each changes the cluster record in one conditional write;
 * the failover itself then runs on one worker (watch it with `cluster show`).
 */
function registerReplication(cluster: Command, ctx: CommandContext): void {
  const show = async (name: string, opts: Record<string, unknown>): Promise<void> => {
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.get(`/clusters/${encodeURIComponent(name)}`, { binary: 'cinder-volume' })) as { cluster: Row };
    const { name: n, status, frozen, replication_status, active_backend_id, disabled_reason } = body.cluster;
    const row = { name: n, status, frozen, replication_status, active_backend_id, disabled_reason };
    ctx.io.out(opts.json === true ? renderJson(row) : renderProperties(row));
  };
  addApiOptions(
    cluster
      .command('failover')
      .description('fail the cluster over to a replication target (or back: --backend-id default); freezes it while the failover runs')
      .argument('<name>', 'cluster name, <cluster>@<backend>')
      .option('--backend-id <id>', 'the replication target to promote; "default" fails back to the primary (default: the first target)'),
  ).action(async (name: string, opts: Record<string, unknown>) => {
    const client = await apiClientFrom(opts, ctx.env);
    await client.put('/os-services/failover', { cluster: name, ...(typeof opts.backendId === 'string' ? { backend_id: opts.backendId } : {}) });
    await show(name, opts);
  });
  for (const [action, what] of [
    ['freeze', 'refuse management operations (create, delete, extend, snapshots, attachments) on the cluster; reads still work'],
    ['thaw', 'accept management operations on the cluster again'],
  ] as const) {
    addApiOptions(cluster.command(action).description(what).argument('<name>', 'cluster name, <cluster>@<backend>')).action(async (name: string, opts: Record<string, unknown>) => {
      const client = await apiClientFrom(opts, ctx.env);
      await client.put(`/os-services/${action}`, { cluster: name });
      await show(name, opts);
    });
  }
}
