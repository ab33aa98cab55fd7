import { readFile } from 'node:fs/promises';
import { ConfigError, type ConfigIssue, messageOf } from '../errors.js';
import { optionEntries } from './entries.js';
import { isOptionSpec, type OptionEntry, type SpecTree } from './option.js';
import { redactUrl } from './redact.js';
import { type Config, configSpec } from './schema.js';
import { crossFieldIssues } from './rules.js';
import { fenceCommandIssues } from './fence-command.js';
import { kubernetesFenceFileIssues } from './kubernetes-fence.js';
import { secretFileIssues } from './secret-file.js';

/** Where configuration comes from; later sources win: defaults < file < env < flags. */
export interface ConfigSources {
  /** Path of a YAML or JSON file (`--config`, or `HEARTH_CONFIG`). */
  readonly file?: string | undefined;
  /** The process environment; only `HEARTH_*` names are read as options (and `KUBERNETES_SERVICE_*` by the fence check). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Option values from the command line, keyed by dotted path, as text. */
  readonly flags?: Readonly<Record<string, string>>;
  /**
   * `check` (default): the files this machine must have — secret files (`etcd.passwordFile`,
   * `amqp.passwordFile`, API token files) must be readable and hold a secret; with
   * `fencing.method` exec, `fencing.exec.command` must be an executable file; with `kubernetes`,
   * what that fence reads (its token, CA and namespace files) must be there, and it needs an API
   * server, configured or the in-cluster one `env` names. `skip`: for commands that never use
   * them (API clients) and for checks of a configuration meant for another machine.
   */
  readonly secretFiles?: 'check' | 'skip';
}

/**
 * Environment names that start with `HEARTH_` but are not options: the config file, the test
 * harness's (`HEARTH_TEST_*`, `HEARTH_KEEP_TEST_DIRS`), which a process under test inherits, and
 * the build's.
 */
const NON_OPTION_ENV = /^HEARTH_(CONFIG|TEST_.*|KEEP_TEST_DIRS|BUILD_.*)$/;

export { optionEntries };
const entriesByPath = new Map(optionEntries.map((e) => [e.path, e]));

/**
 * Builds the effective configuration from its sources.
 *
 * @throws ConfigError listing every problem found, each with its option path and env name.
 */
export async function loadConfig(sources: ConfigSources = {}): Promise<Config> {
  const issues: ConfigIssue[] = [];
  const values = new Map<string, unknown>();
  for (const entry of optionEntries) {
    const d = entry.spec.default;
    values.set(entry.path, typeof d === 'function' ? (d as () => unknown)() : d);
  }
  const env = sources.env ?? {};
  const file = sources.file ?? env.HEARTH_CONFIG;
  if (file) await applyFile(file, values, issues);
  applyEnv(env, values, issues);
  for (const [path, text] of Object.entries(sources.flags ?? {})) {
    const entry = entriesByPath.get(path);
    if (!entry) {
      issues.push({ path, message: 'unknown option' });
      continue;
    }
    setFromText(entry, text, values, issues, `flag ${entry.flag}`);
  }
  const config = validate(values, issues);
  if (issues.length === 0) issues.push(...crossFieldIssues(config));
  if (issues.length === 0 && sources.secretFiles !== 'skip') {
    issues.push(...(await secretFileIssues(config)), ...(await fenceCommandIssues(config)), ...(await kubernetesFenceFileIssues(config.fencing, env)));
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}

async function applyFile(file: string, values: Map<string, unknown>, issues: ConfigIssue[]): Promise<void> {
  let parsed: unknown;
  try {
    // Loaded only when there is a file: a daemon configured by its environment never holds yaml.
    const { parse } = await import('yaml');
    parsed = parse(await readFile(file, 'utf8'));
  } catch (err) {
    issues.push({ path: '--config', message: `cannot read ${file}: ${messageOf(err)}` });
    return;
  }
  if (parsed === null || parsed === undefined) return;
  if (!isPlainObject(parsed)) {
    issues.push({ path: '--config', message: `${file} must hold a mapping of options` });
    return;
  }
  walkFile(parsed, configSpec, [], values, issues);
}

function walkFile(
  node: Record<string, unknown>,
  tree: SpecTree,
  prefix: readonly string[],
  values: Map<string, unknown>,
  issues: ConfigIssue[],
): void {
  for (const [key, value] of Object.entries(node)) {
    const path = [...prefix, key].join('.');
    const child = tree[key];
    if (child === undefined) {
      issues.push({ path, message: 'unknown option' });
    } else if (isOptionSpec(child)) {
      const entry = entriesByPath.get(path) as OptionEntry;
      if (typeof value === 'string' && child.kind !== 'string' && child.kind !== 'enum') {
        setFromText(entry, value, values, issues, 'config file');
      } else {
        values.set(path, value);
      }
    } else if (isPlainObject(value)) {
      walkFile(value, child, [...prefix, key], values, issues);
    } else {
      issues.push({ path, message: 'must be a mapping of options' });
    }
  }
}

function applyEnv(env: Readonly<Record<string, string | undefined>>, values: Map<string, unknown>, issues: ConfigIssue[]): void {
  const byEnv = new Map(optionEntries.map((e) => [e.env, e]));
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith('HEARTH_') || text === undefined || NON_OPTION_ENV.test(name)) continue;
    const entry = byEnv.get(name);
    if (!entry) {
      issues.push({ path: name, env: name, message: 'unknown environment variable (no such option)' });
      continue;
    }
    setFromText(entry, text, values, issues, 'environment');
  }
}

/** Converts an option's text form (env or flag) to its value, or records why it cannot. */
function setFromText(entry: OptionEntry, text: string, values: Map<string, unknown>, issues: ConfigIssue[], source: string): void {
  const result = fromText(entry, text);
  if (result.ok) {
    values.set(entry.path, result.value);
  } else {
    issues.push({ path: entry.path, env: entry.env, message: `${result.message} (from ${source})` });
  }
}

function fromText(entry: OptionEntry, text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  const trimmed = text.trim();
  switch (entry.spec.kind) {
    case 'string':
    case 'enum':
      return { ok: true, value: trimmed };
    case 'int':
      return /^-?\d+$/.test(trimmed)
        ? { ok: true, value: Number(trimmed) }
        : { ok: false, message: `expected an integer${unitSuffix(entry)}, got ${shown(entry, text)}` };
    case 'number': {
      const n = Number(trimmed);
      return trimmed !== '' && Number.isFinite(n)
        ? { ok: true, value: n }
        : { ok: false, message: `expected a number${unitSuffix(entry)}, got ${shown(entry, text)}` };
    }
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(trimmed)) return { ok: true, value: true };
      if (/^(false|0|no|off)$/i.test(trimmed)) return { ok: true, value: false };
      return { ok: false, message: `expected true or false, got ${shown(entry, text)}` };
    case 'list':
      return { ok: true, value: trimmed.split(',').map((s) => s.trim()).filter((s) => s.length > 0) };
  }
}

/**
 * A value quoted in an error message: never a secret option's, and with URL credentials removed
 * from any other (a password can be pasted into the wrong option), cut to a readable length.
 */
function shown(entry: OptionEntry, value: unknown): string {
  if (entry.spec.secret === 'value') return '(hidden: a secret)';
  const text = redactUrl(JSON.stringify(value) ?? String(value));
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

function unitSuffix(entry: OptionEntry): string {
  return entry.spec.unit ? ` (${entry.spec.unit})` : '';
}

function validate(values: Map<string, unknown>, issues: ConfigIssue[]): Config {
  const root: Record<string, unknown> = {};
  for (const entry of optionEntries) {
    const raw = values.get(entry.path);
    const result = entry.spec.schema.safeParse(raw);
    if (result.success) {
      setPath(root, entry.path, result.data);
    } else {
      const detail = result.error.issues.map((i) => (i.path.length ? `[${i.path.join('.')}] ` : '') + i.message).join('; ');
      issues.push({ path: entry.path, env: entry.env, message: `${detail} (got ${shown(entry, raw)})` });
    }
  }
  return deepFreeze(root) as unknown as Config;
}

function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = root;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
