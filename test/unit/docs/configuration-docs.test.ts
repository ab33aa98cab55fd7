import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../../../scripts/gen-config-docs.js';
import { optionEntries } from '../../../src/config/load.js';

const committed = readFileSync(new URL(`../../../${CONFIG_DOCS_PATH}`, import.meta.url), 'utf8');

describe('docs/configuration.md', () => {
  it('is what scripts/gen-config-docs.ts makes of the current schema (regenerate: node --import tsx scripts/gen-config-docs.ts)', () => {
    expect(committed).toBe(renderConfigDocs());
  });

  it('lists every option with its environment variable, flag and default', () => {
    for (const entry of optionEntries) {
      const row = committed.split('\n').find((l) => l.startsWith(`| \`${entry.path}\` |`));
      expect(row, entry.path).toBeDefined();
      expect(row).toContain(`\`${entry.env}\``);
      expect(row).toContain(`\`${entry.flag}\``);
    }
  });

  it('marks secrets as such', () => {
    const row = (path: string): string => committed.split('\n').find((l) => l.startsWith(`| \`${path}\` |`)) ?? '';
    expect(row('etcd.password')).toContain('**Secret:** never printed or logged.');
    expect(row('amqp.url')).toContain('**Secret:** printed and logged without its password.');
  });

  it('changes when an option changes, so staleness is caught', () => {
    const changed = optionEntries.map((e) => (e.path === 'leaseTtlMs' ? { ...e, spec: { ...e.spec, default: 12_345 } } : e));
    expect(renderConfigDocs(changed)).not.toBe(committed);
    expect(renderConfigDocs(changed)).toContain('`12345`');
  });
});
