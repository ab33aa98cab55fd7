import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { familyOf, readCatalogue } from './catalogue.js';
import { requireTool, run } from './tools.js';

const promtool = requireTool('promtool', 'prometheus');

/**
 * The exposition lines of hearth's own metrics. prom-client's defaults are left out: three of
 * them (`nodejs_active_{handles,requests,resources}_total`) are gauges named like counters,
 * which promtool rightly flags and hearth cannot rename.
 */
function hearthFamilies(exposition: string): string {
  return exposition
    .split('\n')
    .filter((line) => /^(# (HELP|TYPE) )?hearth_/.test(line))
    .join('\n')
    .concat('\n');
}

describe.skipIf(!promtool)('a live /metrics from `node bin/hearth.js serve`', () => {
  let hearth: HearthProcess;
  let exposition: string;

  beforeAll(async () => {
    // The built program, as a deployer runs it (`make test` builds before it tests).
    hearth = await startHearth({ name: 'metrics-lint', mode: 'built' });
    const res = await fetch(`${hearth.opsUrl}/metrics`);
    expect(res.status).toBe(200);
    exposition = await res.text();
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  it('passes `promtool check metrics` for every hearth_ metric', async () => {
    const mine = hearthFamilies(exposition);
    expect(mine).toContain('# TYPE hearth_build_info gauge');
    const res = await run('promtool', ['check', 'metrics'], { input: mine });
    expect(res.stdout + res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('would be flagged by promtool if a metric broke the naming rules (the check is real)', async () => {
    const bad = '# HELP hearth_bad_ms x\n# TYPE hearth_bad_ms counter\nhearth_bad_ms 1\n';
    const res = await run('promtool', ['check', 'metrics'], { input: bad });
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toContain('hearth_bad_ms');
  });

  it('exposes only metrics of docs/metrics.md, each with the type the catalogue gives it', () => {
    const catalogue = readCatalogue();
    const types = [...exposition.matchAll(/^# TYPE (hearth_\S+) (\S+)$/gm)];
    expect(types.length).toBeGreaterThan(0);
    for (const [, name, type] of types) {
      expect(catalogue.get(name!)?.type, `${name} in docs/metrics.md`).toBe(type);
    }
    for (const [, series] of exposition.matchAll(/^(hearth_[a-z0-9_]+)[{ ]/gm)) {
      expect(familyOf(series!, catalogue), series).toBeDefined();
    }
  });
});
