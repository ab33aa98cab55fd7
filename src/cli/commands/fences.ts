import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { addApiOptions, apiClientFrom } from '../api-client.js';
import { renderColumns, renderJson } from '../output.js';
import type { CommandContext } from '../context.js';

type Row = Record<string, unknown>;

const AWAITING_COLUMNS = [
  ['Incarnation', 'incarnation'],
  ['Host', 'host'],
  ['Died At', 'died_at'],
  ['Runner', 'runner'],
  ['Failures', 'failures'],
  ['Next Attempt At', 'next_attempt_at'],
  ['Last Error', 'last_error'],
] as const;

const ENDED_COLUMNS = [
  ['Incarnation', 'incarnation'],
  ['Host', 'host'],
  ['How', 'how'],
  ['By', 'by'],
  ['At', 'at'],
  ['Detail', 'detail'],
] as const;

/**
 * `hearth fence list`: dead incarnations awaiting their fence (their orphans and locks wait) and
 * the ends on record (`GET /hearth/v1/fences`). `hearth fence confirm <incarnation>`: records a
 * fence by hand once the operator has made sure the process is stopped (`POST
 * /hearth/v1/fences/{incarnation}/confirm`) — the way out when every fence method fails.
 */
export function registerFences(program: Command, ctx: CommandContext): void {
  const fence = program.command('fence').description('fences of dead worker incarnations: list them, confirm one by hand');
  addApiOptions(
    fence
      .command('list')
      .description('list dead incarnations awaiting their fence (takeovers of their work wait) and how the others ended')
      .option('--awaiting', 'only the incarnations awaiting their fence'),
  ).action(async (opts: Row) => {
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.getHearth('/fences')) as { awaiting: Row[]; ended: Row[] };
    const shown = opts.awaiting === true ? { awaiting: body.awaiting } : body;
    if (opts.json === true) {
      ctx.io.out(renderJson(shown));
      return;
    }
    const out = [body.awaiting.length === 0 ? 'No incarnation awaits a fence.' : `Awaiting a fence:\n${renderColumns(AWAITING_COLUMNS, body.awaiting)}`];
    if (opts.awaiting !== true) out.push(body.ended.length === 0 ? 'No ended incarnation on record.' : `Ended:\n${renderColumns(ENDED_COLUMNS, body.ended)}`);
    ctx.io.out(out.join('\n'));
  });

  addApiOptions(
    fence
      .command('confirm')
      .description('record that a dead incarnation is fenced, after you made sure its process is stopped (power off, kill); its work is then taken over')
      .argument('<incarnation>', 'the incarnation, <host>@<backend>:<session lease id in hex>, as hearth fence list shows it')
      .option('--reason <text>', 'why you know it is stopped; kept with the record (1–255 characters)'),
  ).action(async (incarnation: string, opts: Row) => {
    if (!/^[^\s:]+@[^\s:]+:[^\s]+$/.test(incarnation)) throw new UsageError(`incarnation must be <host>@<backend>:<lease id>, as hearth fence list shows it; got ${JSON.stringify(incarnation)}`);
    const reason = opts.reason;
    if (reason !== undefined && (typeof reason !== 'string' || reason.trim() === '' || reason.length > 255)) throw new UsageError('--reason needs 1 to 255 characters');
    const client = await apiClientFrom(opts, ctx.env);
    const body = (await client.postHearth(`/fences/${encodeURIComponent(incarnation)}/confirm`, reason === undefined ? {} : { reason })) as { fence: Row; created: boolean };
    if (opts.json === true) {
      ctx.io.out(renderJson(body));
      return;
    }
    const end = body.fence;
    ctx.io.out(body.created ? `Incarnation ${incarnation} recorded as fenced; its work will be taken over.` : `Incarnation ${incarnation} had already ended (${String(end.how)} by ${String(end.by)}); nothing changed.`);
  });
}
