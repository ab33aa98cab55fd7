// The single node's own count of the statements its SQLite state store ran, from its /metrics
// (`hearth_sqlite_statements_total{kind}`): what the e2e suite divides by completed operations,
// as it divides etcd's request counters in the cluster.

/** Statements run so far, by kind (`select`, `insert`, `update`, `delete`, `begin`, `commit`, …). */
export type StatementCounts = Record<string, number>;

const LINE = /^hearth_sqlite_statements_total\{kind="([a-z]+)"\}\s+([0-9.e+]+)$/;

/** Parses a hearth /metrics text. */
export function parseStatementCounts(metrics: string): StatementCounts {
  const counts: StatementCounts = {};
  for (const line of metrics.split('\n')) {
    const m = LINE.exec(line);
    if (m) counts[m[1] as string] = (counts[m[1] as string] ?? 0) + Number(m[2]);
  }
  return counts;
}

/** Reads the counters of the hearth process whose ops listener is `opsUrl`. */
export async function sqliteStatementCounts(opsUrl: string): Promise<StatementCounts> {
  const res = await fetch(`${opsUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${opsUrl}/metrics: HTTP ${res.status}`);
  return parseStatementCounts(await res.text());
}

/** The statements of a loaded window less those of an idle window (scaled to the same length), per kind, divided by `ops`. */
export function statementsPerOp(before: StatementCounts, after: StatementCounts, idle: StatementCounts, loadedMs: number, idleMs: number, ops: number): StatementCounts {
  const scale = idleMs <= 0 ? 0 : loadedMs / idleMs;
  const kinds = new Set([...Object.keys(after), ...Object.keys(idle)]);
  const out: StatementCounts = {};
  for (const kind of kinds) {
    const loaded = (after[kind] ?? 0) - (before[kind] ?? 0);
    const background = (idle[kind] ?? 0) - (after[kind] ?? 0);
    out[kind] = ops === 0 ? 0 : Math.max(0, loaded - background * scale) / ops;
  }
  return out;
}

export function totalStatements(counts: StatementCounts): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
