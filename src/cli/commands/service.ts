import type { Command } from 'commander';
import { addApiOptions, apiClientFrom } from '../api-client.js';
import { renderJson, renderTable } from '../output.js';
import type { CommandContext } from '../program.js';

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

/** `hearth service list`: Cinder's `os-services` over HTTP. */
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
    ctx.io.out(
      renderTable(
        COLUMNS.map(([head]) => head),
        body.services.map((s) => COLUMNS.map(([, key]) => (s[key] === null || s[key] === undefined ? '-' : s[key]))),
      ),
    );
  });
}
