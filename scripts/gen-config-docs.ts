// Writes docs/configuration.md from the option table in src/config/schema.ts. Run after
// adding or changing an option:
//
//   node --import tsx scripts/gen-config-docs.ts
//
// test/unit/docs/configuration-docs.test.ts fails when the committed page is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { optionEntries } from '../src/config/load.js';
import type { OptionEntry } from '../src/config/option.js';

/** Where the page goes, relative to the repository root. */
export const CONFIG_DOCS_PATH = 'docs/configuration.md';

const INTRO = `# Configuration reference

<!-- Generated from src/config/schema.ts by scripts/gen-config-docs.ts; do not edit by hand. -->

Every option hearth has. Each one can be set in four places; a later source wins:

1. its default (below);
2. a YAML or JSON file given by \`--config <file>\` or \`HEARTH_CONFIG\`, with the option's
   path as nested keys (\`etcd: { endpoints: [...] }\`);
3. an environment variable: \`HEARTH_\` and the path in upper snake case;
4. a command-line flag: \`--\` and the path in kebab case.

Lists are comma-separated in environment variables and flags; booleans accept
\`true/false\`, \`1/0\`, \`yes/no\`, \`on/off\`. An unknown option, an unknown \`HEARTH_*\`
variable or a bad value stops hearth with exit code 2 and a message naming the option and its
variable; every problem is reported at once. \`hearth config check\` validates without starting
and prints the effective configuration with secrets hidden.

Some rules involve several options (\`src/config/rules.ts\`, \`src/config/api-auth.ts\`):
cluster mode needs both \`etcd.endpoints\` and \`amqp.url\`; \`leaseTtlMs\` is whole seconds
(etcd lease TTLs are) and \`leaseMarginMs\` is at most a third of it; certificate and key files, and user name and password, go in pairs;
a password is given in its option or in its file (\`etcd.passwordFile\`, \`amqp.passwordFile\`), not both, and an unreadable or
empty password file stops hearth with exit code 2 too;
and a process that serves the API on an address other than loopback needs \`api.tokenFile\`
(or \`api.allowRemoteNoauth\`). Where secrets are concerned, see [security.md](security.md).
`;

function code(text: string): string {
  return `\`${text.replaceAll('|', '\\|')}\``;
}

function typeOf(entry: OptionEntry): string {
  const { kind, values, unit } = entry.spec;
  const base = kind === 'enum' ? values!.map((v) => code(v)).join(' \\| ') : kind === 'list' && values ? `list of ${values.map((v) => code(v)).join(', ')}` : kind;
  return unit ? `${base} (${unit})` : base;
}

function defaultOf(entry: OptionEntry): string {
  const d = entry.spec.default;
  if (typeof d === 'function') return 'computed at start';
  if (Array.isArray(d)) return d.length === 0 ? 'empty' : code(d.join(','));
  if (d === '') return 'empty';
  return code(String(d));
}

function docOf(entry: OptionEntry): string {
  const note = entry.spec.secret === 'value' ? ' **Secret:** never printed or logged.' : entry.spec.secret === 'url' ? ' **Secret:** printed and logged without its password.' : '';
  // Escape what Markdown would read as a table separator or an HTML tag (`<host>@<backend>`).
  const doc = entry.spec.doc.replaceAll('|', '\\|').replace(/[<>]/g, (c) => `\\${c}`);
  return `${doc}${note}`;
}

function section(title: string, entries: readonly OptionEntry[]): string {
  const rows = entries.map((e) => `| ${code(e.path)} | ${code(e.env)}<br>${code(e.flag)} | ${typeOf(e)} | ${defaultOf(e)} | ${docOf(e)} |`);
  return [`## ${title}`, '', '| option | environment / flag | type | default | description |', '|---|---|---|---|---|', ...rows, ''].join('\n');
}

/** The whole page, from the option table. */
export function renderConfigDocs(entries: readonly OptionEntry[] = optionEntries): string {
  const groups = new Map<string, OptionEntry[]>();
  for (const entry of entries) {
    const dot = entry.path.indexOf('.');
    const group = dot < 0 ? 'General' : `\`${entry.path.slice(0, dot)}\``;
    groups.set(group, [...(groups.get(group) ?? []), entry]);
  }
  const sections = [...groups].map(([title, list]) => section(title, list));
  return `${[INTRO, ...sections].join('\n')}`;
}

function main(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  writeFileSync(`${root}/${CONFIG_DOCS_PATH}`, renderConfigDocs());
  console.log(`wrote ${CONFIG_DOCS_PATH} (${optionEntries.length} options)`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
