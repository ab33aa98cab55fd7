import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { renderJson, renderTable } from '../output.js';

type Json = Record<string, unknown>;

/** What every command of `volume.ts` takes (given by it: this module must not import it back). */
interface Common {
  readonly project: string;
  readonly json?: boolean;
}

/** The request and option helpers of `volume.ts`. */
export interface VolumeCommandHelpers {
  request(ctx: CommandContext, opts: Common, method: string, path: string, body?: unknown): Promise<Json | undefined>;
  withCommon(cmd: Command): Command;
}

interface ConnectorOptions {
  readonly host?: string;
  readonly mountpoint?: string;
  readonly initiator?: string;
  readonly ip?: string;
}

const ATTACHMENT_SHOWN = ['id', 'status', 'volume_id', 'instance', 'attach_mode', 'attached_at'];

/** os-brick's connector from the command's options (what cinderclient's --host, --mountpoint, … send). */
function connectorOf(opts: ConnectorOptions): Json {
  return {
    host: opts.host ?? null,
    mountpoint: opts.mountpoint ?? null,
    initiator: opts.initiator ?? null,
    ip: opts.ip ?? null,
    platform: 'x86_64',
    os_type: 'linux2',
    multipath: false,
  };
}

function withConnector(cmd: Command): Command {
  return cmd
    .option('--host <host>', 'name of the host attaching (connector host)')
    .option('--mountpoint <path>', 'where the volume will be attached (connector mountpoint)')
    .option('--initiator <iqn>', 'iqn of the initiator')
    .option('--ip <ip>', 'ip of the host attaching');
}

/** A keypair `k=v` of `type-key set`. @throws UsageError */
function keyValue(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new UsageError(`expected key=value, got '${text}'`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/**
 * The attachment verbs (Cinder's attachment-create, -update, -complete, -delete, -list, -show,
 * os-force_detach) and the volume-type commands (type-create, -list, -show, -delete, -key) under
 * `hearth volume`.
 */
export function registerAttachments(volume: Command, ctx: CommandContext, h: VolumeCommandHelpers): void {
  const fail = (): void => ctx.setExitCode(ExitCode.FAILED);
  const printAttachment = (opts: Common, a: Json): void => {
    if (opts.json) return ctx.io.out(renderJson(a));
    ctx.io.out(renderTable(['Property', 'Value'], [...ATTACHMENT_SHOWN.map((k) => [k, a[k]]), ['connection_info', JSON.stringify(a.connection_info ?? {})]]));
  };
  const printType = (opts: Common, t: Json): void => {
    if (opts.json) return ctx.io.out(renderJson(t));
    ctx.io.out(renderTable(['Property', 'Value'], ['id', 'name', 'description', 'is_public', 'extra_specs'].map((k) => [k, k === 'extra_specs' ? JSON.stringify(t[k] ?? {}) : t[k]])));
  };
  /** A type by id or name, as cinderclient finds it. */
  const findType = async (opts: Common, nameOrId: string): Promise<Json> => {
    const types = ((await h.request(ctx, opts, 'GET', '/types'))?.volume_types ?? []) as Json[];
    const type = types.find((t) => t.id === nameOrId) ?? types.find((t) => t.name === nameOrId);
    if (!type) throw new UsageError(`no volume type with a name or id of '${nameOrId}'`);
    return type;
  };

  withConnector(h.withCommon(volume.command('attach').argument('<volume>', 'volume id').option('--server <id>', 'the server (instance) it is for').option('--connect', 'connect now (send the connector)')))
    .description('attachment-create: reserve the volume, or with --connect (or --host) connect it and print the connection info')
    .action(async (id: string, opts: Common & ConnectorOptions & { server?: string; connect?: boolean }) => {
      fail();
      const connect = opts.connect === true || opts.host !== undefined;
      const body = { attachment: { volume_uuid: id, instance_uuid: opts.server ?? null, connector: connect ? connectorOf(opts) : null } };
      printAttachment(opts, (await h.request(ctx, opts, 'POST', '/attachments', body))?.attachment as Json);
      ctx.setExitCode(ExitCode.OK);
    });

  withConnector(h.withCommon(volume.command('attachment-update').argument('<attachment>', 'attachment id')))
    .description('connect a reserved attachment for this host and print the connection info')
    .action(async (id: string, opts: Common & ConnectorOptions) => {
      fail();
      printAttachment(opts, (await h.request(ctx, opts, 'PUT', `/attachments/${encodeURIComponent(id)}`, { attachment: { connector: connectorOf(opts) } }))?.attachment as Json);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('attachment-complete').argument('<attachment>', 'attachment id'))
    .description('mark a connected attachment attached: the volume is in-use')
    .action(async (id: string, opts: Common) => {
      fail();
      await h.request(ctx, opts, 'POST', `/attachments/${encodeURIComponent(id)}/action`, { 'os-complete': null });
      ctx.io.out(opts.json ? renderJson({ id, completed: true }) : `Attachment ${id} is attached.`);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('detach').argument('<attachment>', 'attachment id'))
    .description('attachment-delete: end the connection (a worker does) and remove the attachment')
    .action(async (id: string, opts: Common) => {
      fail();
      const res = await h.request(ctx, opts, 'DELETE', `/attachments/${encodeURIComponent(id)}`);
      ctx.io.out(opts.json ? renderJson(res ?? {}) : `Attachment ${id} was deleted.`);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('force-detach').argument('<volume>', 'volume id').option('--attachment <id>', 'the attachment (default: the volume\'s only one)'))
    .description('os-force_detach (admin): remove an attachment whatever the driver answers')
    .action(async (id: string, opts: Common & { attachment?: string }) => {
      fail();
      await h.request(ctx, opts, 'POST', `/volumes/${encodeURIComponent(id)}/action`, { 'os-force_detach': { attachment_id: opts.attachment ?? null } });
      ctx.io.out(opts.json ? renderJson({ id, detached: opts.attachment ?? true }) : `Volume ${id} was force-detached.`);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('attachments').option('--volume <id>', 'only this volume\'s').option('--all-projects', "every project's"))
    .description('attachment-list')
    .action(async (opts: Common & { volume?: string; allProjects?: boolean }) => {
      fail();
      const query = new URLSearchParams({ ...(opts.volume ? { volume_id: opts.volume } : {}), ...(opts.allProjects ? { all_tenants: '1' } : {}) }).toString();
      const list = ((await h.request(ctx, opts, 'GET', `/attachments${query ? `?${query}` : ''}`))?.attachments ?? []) as Json[];
      if (opts.json) ctx.io.out(renderJson(list));
      else ctx.io.out(renderTable(['ID', 'Volume ID', 'Status', 'Server ID'], list.map((a) => [a.id, a.volume_id, a.status, a.instance])));
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('attachment-show').argument('<attachment>', 'attachment id'))
    .description('attachment-show')
    .action(async (id: string, opts: Common) => {
      fail();
      printAttachment(opts, (await h.request(ctx, opts, 'GET', `/attachments/${encodeURIComponent(id)}`))?.attachment as Json);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('type-create').argument('<name>', 'type name').option('--description <text>', 'description').option('--multiattach', 'set multiattach="<is> True"'))
    .description('create a volume type')
    .action(async (name: string, opts: Common & { description?: string; multiattach?: boolean }) => {
      fail();
      let type = (await h.request(ctx, opts, 'POST', '/types', { volume_type: { name, description: opts.description ?? null } }))?.volume_type as Json;
      if (opts.multiattach) {
        await h.request(ctx, opts, 'POST', `/types/${String(type.id)}/extra_specs`, { extra_specs: { multiattach: '<is> True' } });
        type = (await h.request(ctx, opts, 'GET', `/types/${String(type.id)}`))?.volume_type as Json;
      }
      printType(opts, type);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('type-list'))
    .description('list volume types')
    .action(async (opts: Common) => {
      fail();
      const types = ((await h.request(ctx, opts, 'GET', '/types'))?.volume_types ?? []) as Json[];
      if (opts.json) ctx.io.out(renderJson(types));
      else ctx.io.out(renderTable(['ID', 'Name', 'Description', 'Is_Public', 'Extra specs'], types.map((t) => [t.id, t.name, t.description, t.is_public, JSON.stringify(t.extra_specs ?? {})])));
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('type-show').argument('<type>', 'type name or id'))
    .description('show a volume type')
    .action(async (nameOrId: string, opts: Common) => {
      fail();
      printType(opts, await findType(opts, nameOrId));
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('type-delete').argument('<type>', 'type name or id'))
    .description('delete a volume type no volume uses')
    .action(async (nameOrId: string, opts: Common) => {
      fail();
      const type = await findType(opts, nameOrId);
      await h.request(ctx, opts, 'DELETE', `/types/${String(type.id)}`);
      ctx.io.out(opts.json ? renderJson({ id: type.id, deleted: true }) : `Volume type ${String(type.name)} was deleted.`);
      ctx.setExitCode(ExitCode.OK);
    });

  h.withCommon(volume.command('type-key').argument('<type>', 'type name or id').argument('<action>', 'set or unset').argument('<keys...>', 'key=value (set) or key (unset)'))
    .description('set or unset extra specs of a volume type, e.g. multiattach="<is> True"')
    .action(async (nameOrId: string, action: string, keys: string[], opts: Common) => {
      fail();
      if (action !== 'set' && action !== 'unset') throw new UsageError(`action must be set or unset, got '${action}'`);
      const type = await findType(opts, nameOrId);
      if (action === 'set') await h.request(ctx, opts, 'POST', `/types/${String(type.id)}/extra_specs`, { extra_specs: Object.fromEntries(keys.map(keyValue)) });
      else for (const key of keys) await h.request(ctx, opts, 'DELETE', `/types/${String(type.id)}/extra_specs/${encodeURIComponent(key)}`);
      printType(opts, await findType(opts, String(type.id)));
      ctx.setExitCode(ExitCode.OK);
    });
}
