import { Counter, Histogram, type Registry } from 'prom-client';
import { CoordinatorError } from '../errors.js';

/** Buckets for one store write: sub-millisecond on SQLite, a few round trips on etcd. */
const TRANSITION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The state store's instruments (names as in docs/metrics.md). */
export interface StateMetrics {
  readonly transitions: Counter<'resource' | 'result'>;
  readonly duration: Histogram<'backend'>;
  /** etcd stores only: bytes of keys and values read, by request kind (`list`, `get`, `write`, `list_ops`, `index_build`). */
  readonly etcdReadBytes: Counter<'kind'>;
  /** SQLite stores only: statements run, by kind (`select`, `insert`, `update`, `delete`, `begin`, `commit`, `rollback`). */
  readonly sqliteStatements: Counter<'kind'>;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/** Declares (or finds, when a second store shares the registry) the state store's instruments. */
export function createStateMetrics(registry: Registry): StateMetrics {
  const transitions =
    existing<Counter<'resource' | 'result'>>(registry, 'hearth_transitions_total') ??
    new Counter({
      name: 'hearth_transitions_total',
      help: 'Conditional state transitions (creates, transitions, removes, op updates) by outcome.',
      labelNames: ['resource', 'result'] as const,
      registers: [registry],
    });
  const duration =
    existing<Histogram<'backend'>>(registry, 'hearth_transition_duration_seconds') ??
    new Histogram({
      name: 'hearth_transition_duration_seconds',
      help: 'Duration of one conditional transition, including re-reads after lost races.',
      labelNames: ['backend'] as const,
      buckets: TRANSITION_BUCKETS_SECONDS,
      registers: [registry],
    });
  const etcdReadBytes =
    existing<Counter<'kind'>>(registry, 'hearth_etcd_read_bytes_total') ??
    new Counter({
      name: 'hearth_etcd_read_bytes_total',
      help: 'Bytes of keys and values the state store read from etcd, by request kind: list, get, write, list_ops, index_build.',
      labelNames: ['kind'] as const,
      registers: [registry],
    });
  const sqliteStatements =
    existing<Counter<'kind'>>(registry, 'hearth_sqlite_statements_total') ??
    new Counter({
      name: 'hearth_sqlite_statements_total',
      help: 'Statements the SQLite state store ran, by kind: select, insert, update, delete, begin, commit, rollback (a trigger\'s statements are not counted).',
      labelNames: ['kind'] as const,
      registers: [registry],
    });
  return { transitions, duration, etcdReadBytes, sqliteStatements };
}

/** The `result` label of a write's outcome. */
export function resultLabel(outcome: unknown): 'ok' | 'conflict' | 'fenced' | 'error' {
  if (outcome instanceof CoordinatorError) return outcome.code === 'FENCED' ? 'fenced' : 'error';
  if (typeof outcome === 'object' && outcome !== null && 'ok' in outcome) return outcome.ok ? 'ok' : 'conflict';
  return 'error';
}

/** Runs one write, counting its outcome and timing it. */
export async function measured<T extends { ok: boolean }>(
  metrics: StateMetrics,
  backend: 'etcd' | 'sqlite',
  resource: string,
  write: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  let result: 'ok' | 'conflict' | 'fenced' | 'error' = 'error';
  try {
    const outcome = await write();
    result = resultLabel(outcome);
    return outcome;
  } catch (err) {
    result = resultLabel(err);
    throw err;
  } finally {
    metrics.duration.observe({ backend }, (performance.now() - started) / 1_000);
    metrics.transitions.inc({ resource, result });
  }
}
