import type { Command } from 'commander';
import { type ConfigSources, loadConfig, optionEntries } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** camelCase key commander gives a flag → the option's dotted path. */
const pathByKey = new Map(
  optionEntries.map((e) => [e.flag.slice(2).replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase()), e.path]),
);

/** Adds `--config` and one flag per configuration option (e.g. `--lease-ttl-ms`). */
export function addConfigFlags(command: Command): Command {
  command.option('--config <file>', 'YAML or JSON configuration file (env: HEARTH_CONFIG)');
  for (const entry of optionEntries) {
    const unit = entry.spec.unit ? ` [${entry.spec.unit}]` : '';
    command.option(`${entry.flag} <value>`, `${entry.spec.doc}${unit} (env: ${entry.env})`);
  }
  return command;
}

/**
 * Loads the configuration from defaults, `--config`, the environment and the flags given.
 * `secretFiles: 'skip'` leaves the password files unread (see {@link ConfigSources}).
 */
export function configFromFlags(opts: Record<string, unknown>, env: NodeJS.ProcessEnv, secretFiles: ConfigSources['secretFiles'] = 'check'): Promise<Config> {
  const flags: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts)) {
    const path = pathByKey.get(key);
    if (path !== undefined && typeof value === 'string') flags[path] = value;
  }
  const file = typeof opts.config === 'string' ? opts.config : undefined;
  return loadConfig({ file, env, flags, secretFiles });
}
