import { readFileSync } from 'node:fs';
import { repoPath } from './tools.js';

/** One row of docs/metrics.md. */
export interface CatalogueEntry {
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
  readonly labels: readonly string[];
}

/** Labels the scrape target adds (Prometheus and the Prometheus Operator), not the process. */
export const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'endpoint', 'container'];

/** Reads the metric catalogue every concern implements: docs/metrics.md's table. */
export function readCatalogue(): Map<string, CatalogueEntry> {
  const text = readFileSync(repoPath('docs/metrics.md'), 'utf8');
  const catalogue = new Map<string, CatalogueEntry>();
  for (const line of text.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    // | `name` | type | labels | meaning |
    const name = /^`(hearth_[a-z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    const type = cells[2];
    if (!name || !(type === 'counter' || type === 'gauge' || type === 'histogram' || type === 'summary')) continue;
    const labels = (cells[3] ?? '')
      .split(',')
      .map((part) => /`([a-z_][a-z0-9_]*)`/.exec(part)?.[1])
      .filter((l): l is string => l !== undefined);
    catalogue.set(name, { type, labels });
  }
  return catalogue;
}

/** The catalogue name a series name belongs to (`x_bucket` → `x` for histograms). */
export function familyOf(series: string, catalogue: ReadonlyMap<string, CatalogueEntry>): string | undefined {
  if (catalogue.has(series)) return series;
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  const base = m?.[1];
  const entry = base === undefined ? undefined : catalogue.get(base);
  return entry && (entry.type === 'histogram' || entry.type === 'summary') ? base : undefined;
}

/** Problems with the hearth metrics and labels a PromQL expression uses, checked against the catalogue. */
export function promqlProblems(expr: string, catalogue: ReadonlyMap<string, CatalogueEntry>): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const [, series] of expr.matchAll(/\b(hearth_[a-z0-9_]+)\b/g)) {
    const family = familyOf(series as string, catalogue);
    if (family === undefined) problems.push(`${series} is not in docs/metrics.md`);
    else used.add(family);
  }
  const known = new Set([...TARGET_LABELS, 'le', ...[...used].flatMap((f) => catalogue.get(f)?.labels ?? [])]);
  for (const [, series, matchers] of expr.matchAll(/\b(hearth_[a-z0-9_]+)\s*\{([^}]*)\}/g)) {
    const labels = catalogue.get(familyOf(series as string, catalogue) ?? '')?.labels ?? [];
    for (const [, label] of (matchers as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (!TARGET_LABELS.includes(label as string) && !labels.includes(label as string) && label !== 'le') {
        problems.push(`${series} has no label ${label}`);
      }
    }
  }
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of (list as string).split(',').map((l) => l.trim()).filter(Boolean)) {
      if (used.size > 0 && !known.has(label)) problems.push(`no metric in the expression has the label ${label}`);
    }
  }
  return problems;
}
