import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { addApiOptions, apiClientFrom } from '../api-client.js';
import { renderColumns, renderJson } from '../output.js';
import type { CommandContext } from '../context.js';

const COLUMNS = [
  ['Id', 'id'],
  ['Binary', 'binary'],
  ['Host', 'host'],
  ['Zone', 'zone'],
  ['Status', 'status'],
  ['State', 'state'],
  ['Updated At', 'updated_at'],
  ['Cluster', 'cluster'],
  ['Disabled Reason', 'disabled_reason'],
  ['Backend State', 'backend_state'],
] as const;

/**
 * `hearth service list`: Cinder's `os-services` over HTTP. `hearth service remove <binary>
 * <host>`: removes a down service's record (Cinder's `cinder-manage service remove`).
 */
export function registerService(program: Command, ctx: CommandContext): void {
  const service = program.command('service').description('list services (worker hosts) through the API');
  addApiOptions(
    service
      .command('list')
      .description('list services with their state (up while the host\'s lease lives)')
      .option('--host <host>', 'host name; without @backend it matches every backend of the host')
      .option('--binary <binary>', 'service binary, e.g. cinder-volume'),
  ).action(async (opts: Record<string, unknown>) => {
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.get('/os-services', { host: opts.host as string | undefined, binary: opts.binary as string | undefined })) as {
      services: Record<string, unknown>[];
    };
    if (opts.json === true) {
      ctx.io.out(renderJson(body.services));
      return;
    }
    ctx.io.out(renderColumns(COLUMNS, body.services));
  });

  addApiOptions(
    service
      .command('remove')
      .description('remove the record of a service that is down for good (refused while it is alive or still owns unfinished operations)')
      .argument('<binary>', 'service binary, e.g. cinder-volume')
      .argument('<host>', 'the full host id, <host>@<backend>, as hearth service list shows it'),
  ).action(async (binary: string, host: string, opts: Record<string, unknown>) => {
    if (binary.trim() === '' || host.trim() === '') throw new UsageError('binary and host must not be empty');
    if (!host.includes('@')) throw new UsageError(`host must be the full host id <host>@<backend>, got ${JSON.stringify(host)}`);
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.deleteHearth(`/services/${encodeURIComponent(binary)}/${encodeURIComponent(host)}`)) as { service: Record<string, unknown> };
    ctx.io.out(opts.json === true ? renderJson(body.service) : `Service ${binary} on host ${host} removed.`);
  });
}
