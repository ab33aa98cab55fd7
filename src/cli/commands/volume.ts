import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatVersion, MAX_VERSION } from '../../api/microversion.js';
import { loadConfig } from '../../config/load.js';
import { parseListen } from '../../config/rules.js';
import { CoordinatorError, messageOf, UsageError } from '../../errors.js';
import { MAX_VOLUME_SIZE_GIB } from '../../volumes/request-schemas.js';
import { ExitCode } from '../exit-codes.js';
import { renderJson, renderTable } from '../output.js';
import type { CommandContext } from '../context.js';
import { registerAttachments } from './volume-attach.js';

export interface CommonOptions {
  readonly url?: string;
  readonly project: string;
  readonly json?: boolean;
  readonly config?: string;
  readonly tokenFile?: string;
}

export type Json = Record<string, unknown>;

/** The API refused the request; its Cinder fault message is the error message. */
class ApiRefusedError extends CoordinatorError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(status === 404 ? 'NOT_FOUND' : status >= 500 ? 'BACKEND_UNAVAILABLE' : 'INVALID_INPUT', message);
  }
}

/** Where the API is and how to authenticate: `--url`/`--token-file`, else the configuration. */
async function target(opts: CommonOptions, env: NodeJS.ProcessEnv): Promise<{ base: string; token: string }> {
  const config = await loadConfig({ file: opts.config ?? env.HEARTH_CONFIG, env, flags: {}, secretFiles: 'skip' });
  const { host, port } = parseListen(config.api.listen);
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  const tokenFile = opts.tokenFile ?? config.api.tokenFile;
  // Cinder's noauth names the caller as user:project; with token auth the token is the caller.
  const token = tokenFile === '' ? `admin:${opts.project}` : await readToken(tokenFile);
  return { base: (opts.url ?? `http://${reachable}:${port}`).replace(/\/+$/, ''), token };
}

async function readToken(path: string): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token === '') throw new UsageError(`the token file ${path} is empty`);
    return token;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read the token file ${path}: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * A small client of hearth's volume API: the token from `api.tokenFile` (or `--token-file`) as
 * `X-Auth-Token`, or Cinder's noauth `X-Auth-Token: admin:<project>` when there is none.
 *
 * Failure semantics: one HTTP request per call with a 30 s deadline; an unreachable API or a
 * deadline fails the command (exit 1) without retrying, since a retried create could make two
 * volumes.
 */
export async function request(ctx: CommandContext, opts: CommonOptions, method: string, path: string, body?: unknown): Promise<Json | undefined> {
  const { base, token } = await target(opts, ctx.env);
  const url = `${base}/v3/${encodeURIComponent(opts.project)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        'X-Auth-Token': token,
        'OpenStack-API-Version': `volume ${formatVersion(MAX_VERSION)}`,
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CoordinatorError('BACKEND_UNAVAILABLE', `cannot reach the hearth API at ${base}: ${messageOf(err instanceof Error && err.cause ? err.cause : err)}`, { cause: err });
  }
  const text = await res.text();
  const parsed = text === '' ? undefined : (JSON.parse(text) as Json);
  if (!res.ok) {
    const fault = parsed && (Object.values(parsed)[0] as { message?: string } | undefined);
    throw new ApiRefusedError(res.status, `${fault?.message ?? `HTTP ${res.status}`} (HTTP ${res.status})`);
  }
  return parsed;
}

function sizeArg(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > MAX_VOLUME_SIZE_GIB) {
    throw new UsageError(`size must be a whole number of GiB from 1 to ${MAX_VOLUME_SIZE_GIB}, got '${text}'`);
  }
  return Number(text);
}

const SHOWN = ['id', 'name', 'status', 'size', 'cluster_name', 'os-vol-host-attr:host', 'availability_zone', 'volume_type', 'multiattach', 'attachments', 'snapshot_id', 'source_volid', 'created_at', 'updated_at', 'description'];

function printVolume(ctx: CommandContext, opts: CommonOptions, volume: Json): void {
  if (opts.json) return ctx.io.out(renderJson(volume));
  ctx.io.out(renderTable(['Property', 'Value'], SHOWN.map((k) => [k, volume[k]])));
}

export function withCommon(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'hearth API base URL (default: http://<api.listen> from the configuration)')
    .option('--project <id>', 'project id in the API path', 'admin')
    .option('--config <file>', 'configuration file to read api.listen and api.tokenFile from (env: HEARTH_CONFIG)')
    .option('--token-file <file>', 'file holding the API token (default: api.tokenFile; none: noauth)')
    .option('--json', 'print JSON for scripts');
}

/**
 * `hearth volume create|list|show|delete|extend`, the attachment verbs and the type commands
 * (`volume-attach.ts`): the volume API from the command line.
 */
export function registerVolume(program: Command, ctx: CommandContext): void {
  const volume = program.command('volume').description('create, list, show, delete and extend volumes through the hearth API');
  const fail = (): void => ctx.setExitCode(ExitCode.FAILED);

  withCommon(
    volume
      .command('create')
      .argument('[size]', 'size in GiB (with a source: at least its size; default the source\'s)')
      .option('--name <name>', 'volume name')
      .option('--description <text>', 'description')
      .option('--snapshot-id <id>', 'create the volume from this snapshot (as cinder create --snapshot-id)')
      .option('--source-volid <id>', 'create the volume as a clone of this volume (as cinder create --source-volid)')
      .option('--type <type>', 'volume type name or id (multiattach comes from it)'),
  )
    .description('create a volume, blank or from a snapshot or a volume (it stays creating until a worker creates it)')
    .action(async (size: string | undefined, opts: CommonOptions & { name?: string; description?: string; snapshotId?: string; sourceVolid?: string; type?: string }) => {
      fail();
      if (opts.snapshotId !== undefined && opts.sourceVolid !== undefined) throw new UsageError('give at most one of --snapshot-id and --source-volid');
      if (size === undefined && opts.snapshotId === undefined && opts.sourceVolid === undefined) throw new UsageError('a size is needed unless --snapshot-id or --source-volid gives one');
      const body = {
        volume: {
          size: size === undefined ? null : sizeArg(size),
          name: opts.name ?? null,
          description: opts.description ?? null,
          snapshot_id: opts.snapshotId ?? null,
          source_volid: opts.sourceVolid ?? null,
          ...(opts.type === undefined ? {} : { volume_type: opts.type }),
        },
      };
      printVolume(ctx, opts, (await request(ctx, opts, 'POST', '/volumes', body))?.volume as Json);
      ctx.setExitCode(ExitCode.OK);
    });

  withCommon(volume.command('list').option('--all-projects', "every project's volumes"))
    .description('list volumes, newest first')
    .action(async (opts: CommonOptions & { allProjects?: boolean }) => {
      fail();
      const res = await request(ctx, opts, 'GET', `/volumes/detail${opts.allProjects ? '?all_tenants=1' : ''}`);
      const volumes = (res?.volumes ?? []) as Json[];
      if (opts.json) ctx.io.out(renderJson(volumes));
      else ctx.io.out(renderTable(['ID', 'Name', 'Status', 'Size', 'Cluster', 'Host'], volumes.map((v) => [v.id, v.name, v.status, v.size, v.cluster_name, v['os-vol-host-attr:host']])));
      ctx.setExitCode(ExitCode.OK);
    });

  withCommon(volume.command('show').argument('<id>', 'volume id'))
    .description('show one volume')
    .action(async (id: string, opts: CommonOptions) => {
      fail();
      printVolume(ctx, opts, (await request(ctx, opts, 'GET', `/volumes/${encodeURIComponent(id)}`))?.volume as Json);
      ctx.setExitCode(ExitCode.OK);
    });

  withCommon(volume.command('delete').argument('<id>', 'volume id'))
    .description('delete a volume (it stays deleting until a worker deletes it)')
    .action(async (id: string, opts: CommonOptions) => {
      fail();
      await request(ctx, opts, 'DELETE', `/volumes/${encodeURIComponent(id)}`);
      ctx.io.out(opts.json ? renderJson({ id, accepted: 'delete' }) : `Request to delete volume ${id} has been accepted.`);
      ctx.setExitCode(ExitCode.OK);
    });

  withCommon(volume.command('extend').argument('<id>', 'volume id').argument('<size>', 'new size in GiB'))
    .description('extend a volume to a larger size (it stays extending until a worker extends it)')
    .action(async (id: string, size: string, opts: CommonOptions) => {
      fail();
      const newSize = sizeArg(size);
      await request(ctx, opts, 'POST', `/volumes/${encodeURIComponent(id)}/action`, { 'os-extend': { new_size: newSize } });
      ctx.io.out(opts.json ? renderJson({ id, accepted: 'extend', newSize }) : `Request to extend volume ${id} to ${newSize} GiB has been accepted.`);
      ctx.setExitCode(ExitCode.OK);
    });

  registerAttachments(volume, ctx, { request, withCommon });
}
