/** The outcome of one health check. */
export interface CheckResult {
  readonly ok: boolean;
  /** Short reason shown when the check fails (never a secret). */
  readonly detail?: string;
}

/** A named check that answers from memory (no I/O on the probe path). */
export type HealthCheck = () => CheckResult;

/**
 * The checks behind `/livez` and `/readyz`. Components register theirs; the probes only read
 * state the components keep up to date, so a probe never blocks on etcd or RabbitMQ.
 */
export class Health {
  private readonly liveness = new Map<string, HealthCheck>();
  private readonly readiness = new Map<string, HealthCheck>();
  private readonly informational = new Map<string, HealthCheck>();
  private drainingSince: number | undefined;

  /** Adds a liveness check: the process is working (not its dependencies). */
  addLiveness(name: string, check: HealthCheck): void {
    this.liveness.set(name, check);
  }

  /** Adds a readiness check: a dependency this process needs to take work. */
  addReadiness(name: string, check: HealthCheck): void {
    this.readiness.set(name, check);
  }

  /**
   * Adds a check `/readyz?verbose` shows without counting it: a state an operator should see
   * that must not take the process out of service (a worker's backend down, in a process that
   * also serves the API). Replaces a readiness check of the same name.
   */
  addInformational(name: string, check: HealthCheck): void {
    this.readiness.delete(name);
    this.informational.set(name, check);
  }

  /** Marks the process as shutting down: readiness fails from now on. */
  startDraining(now = Date.now()): void {
    this.drainingSince ??= now;
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  live(): Report {
    return evaluate(this.liveness);
  }

  ready(): Report {
    const report = evaluate(this.readiness);
    const shown = this.informational.size === 0 ? report : { ...report, informational: evaluate(this.informational).checks };
    if (this.drainingSince === undefined) return shown;
    return { ...shown, ok: false, checks: { ...report.checks, shutdown: { ok: false, detail: 'draining' } } };
  }
}

/** Every check's result, and whether all passed. */
export interface Report {
  readonly ok: boolean;
  readonly checks: Readonly<Record<string, CheckResult>>;
  /** Checks shown but not counted in `ok` (see {@link Health.addInformational}). */
  readonly informational?: Readonly<Record<string, CheckResult>>;
}

function evaluate(checks: ReadonlyMap<string, HealthCheck>): Report {
  const results: Record<string, CheckResult> = {};
  let ok = true;
  for (const [name, check] of checks) {
    let result: CheckResult;
    try {
      result = check();
    } catch (err) {
      result = { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
    results[name] = result;
    ok &&= result.ok;
  }
  return { ok, checks: results };
}
