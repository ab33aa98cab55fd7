import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MONITORING_PATHS, renderDashboardConfigMap, renderPrometheusRule } from '../../../scripts/gen-monitoring.js';

function read(path: string): string {
  return readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
}

// The Kubernetes copies of the alert rules and the dashboard are generated from
// deploy/monitoring/; regenerate with `node --import tsx scripts/gen-monitoring.ts`.
describe('generated monitoring manifests', () => {
  it('hold the current alert rules', () => {
    expect(read(MONITORING_PATHS.prometheusRule)).toBe(renderPrometheusRule());
  });

  it('hold the current dashboard', () => {
    expect(read(MONITORING_PATHS.dashboardConfigMap)).toBe(renderDashboardConfigMap());
  });

  it('wrap the sources unchanged', () => {
    const rule = parse(read(MONITORING_PATHS.prometheusRule)) as { kind: string; spec: { groups: unknown } };
    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.spec.groups).toEqual((parse(read(MONITORING_PATHS.alerts)) as { groups: unknown }).groups);
    const cm = parse(read(MONITORING_PATHS.dashboardConfigMap)) as { metadata: { labels: Record<string, string> }; data: Record<string, string> };
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(cm.data['hearth.json']!)).toEqual(JSON.parse(read(MONITORING_PATHS.dashboard)));
  });

  it('differ as soon as a source changes, so staleness is caught', () => {
    expect(renderPrometheusRule(read(MONITORING_PATHS.alerts).replace('for: 15m', 'for: 16m'))).not.toBe(read(MONITORING_PATHS.prometheusRule));
    expect(renderDashboardConfigMap(read(MONITORING_PATHS.dashboard).replace('"hearth-overview"', '"x"'))).not.toBe(read(MONITORING_PATHS.dashboardConfigMap));
  });
});
