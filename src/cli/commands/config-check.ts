import type { Command } from 'commander';
import { redactConfig } from '../../config/redact.js';
import { addConfigFlags, configFromFlags } from '../config-flags.js';
import { renderJson } from '../output.js';
import type { CommandContext } from '../context.js';

/** `hearth config check`: validates the configuration and prints it with secrets redacted. */
export function registerConfig(program: Command, ctx: CommandContext): void {
  const config = program.command('config').description('inspect the configuration');
  const check = config
    .command('check')
    .description('validate the configuration from every source and print the effective result (secrets redacted)')
    .option('--json', 'print JSON instead of YAML')
    .option('--skip-secret-files', 'do not read the password files nor look for the fence command it names (a configuration meant for another machine, e.g. a pod)');
  addConfigFlags(check).action(async (opts: Record<string, unknown>) => {
    const effective = redactConfig(await configFromFlags(opts, ctx.env, opts.skipSecretFiles === true ? 'skip' : 'check'));
    // yaml is loaded only here and for a configuration file: a daemon without one never holds it.
    ctx.io.out(opts.json === true ? renderJson(effective) : (await import('yaml')).stringify(effective));
  });
}
