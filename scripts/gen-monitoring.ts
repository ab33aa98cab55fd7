// Writes the Kubernetes copies of hearth's alert rules and Grafana dashboard from their one
// source in deploy/monitoring/. Run after editing either source:
//
//   node --import tsx scripts/gen-monitoring.ts
//
// Kustomize cannot load files from outside a kustomization's directory, nor wrap a rules file
// in a PrometheusRule, hence generated files; test/unit/deploy/generated-files.test.ts fails
// when they are stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Repository-relative paths of the sources and the generated files. */
export const MONITORING_PATHS = {
  alerts: 'deploy/monitoring/alerts.yaml',
  dashboard: 'deploy/monitoring/dashboards/hearth.json',
  prometheusRule: 'deploy/kubernetes/components/monitoring/prometheusrule.yaml',
  dashboardConfigMap: 'deploy/kubernetes/components/monitoring/dashboard.yaml',
} as const;

const LABELS = { 'app.kubernetes.io/name': 'hearth', 'app.kubernetes.io/component': 'monitoring' };

function header(source: string): string {
  return `# Generated from ${source} by scripts/gen-monitoring.ts; do not edit.\n`;
}

function read(path: string): string {
  return readFileSync(`${ROOT}/${path}`, 'utf8');
}

/** The PrometheusRule holding the groups of deploy/monitoring/alerts.yaml. */
export function renderPrometheusRule(alertsYaml: string = read(MONITORING_PATHS.alerts)): string {
  const rules = parse(alertsYaml) as { groups: unknown[] };
  const object = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'hearth', labels: LABELS },
    spec: { groups: rules.groups },
  };
  return header(MONITORING_PATHS.alerts) + stringify(object, { lineWidth: 0 });
}

/** The ConfigMap Grafana's dashboard sidecar loads (label `grafana_dashboard: "1"`). */
export function renderDashboardConfigMap(dashboardJson: string = read(MONITORING_PATHS.dashboard)): string {
  // Parse and re-print so that a malformed dashboard fails here, not in Grafana.
  const text = `${JSON.stringify(JSON.parse(dashboardJson), null, 2)}\n`;
  const object = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'hearth-dashboard', labels: { ...LABELS, grafana_dashboard: '1' } },
    data: { 'hearth.json': text },
  };
  return header(MONITORING_PATHS.dashboard) + stringify(object, { lineWidth: 0 });
}

function main(): void {
  writeFileSync(`${ROOT}/${MONITORING_PATHS.prometheusRule}`, renderPrometheusRule());
  writeFileSync(`${ROOT}/${MONITORING_PATHS.dashboardConfigMap}`, renderDashboardConfigMap());
  console.log(`wrote ${MONITORING_PATHS.prometheusRule} and ${MONITORING_PATHS.dashboardConfigMap}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
