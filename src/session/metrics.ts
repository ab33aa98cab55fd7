import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { SessionState } from './session.js';

const STATES = ['held', 'jeopardy', 'lost'] as const;

/**
 * The session instruments of `docs/metrics.md`, declared once per registry and shared by the
 * process's successive sessions (one per incarnation): the gauges show the newest session.
 */
export class SessionMetrics {
  private readonly up: Gauge;
  private readonly stateGauge: Gauge<'state'>;
  private readonly rtt: Histogram;
  private readonly failures: Counter;
  private readonly lostTotal: Counter;

  constructor(registry: Registry) {
    this.up = new Gauge({
      name: 'hearth_etcd_session_up',
      help: '1 while the etcd session lease is held or in jeopardy.',
      registers: [registry],
    });
    this.stateGauge = new Gauge({
      name: 'hearth_session_state',
      help: '1 for the current state of the session lease.',
      labelNames: ['state'] as const,
      registers: [registry],
    });
    this.rtt = new Histogram({
      name: 'hearth_session_keepalive_rtt_seconds',
      help: 'Round trip of one lease keepalive.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'hearth_session_keepalive_failures_total',
      help: 'Lease keepalives that failed or went unanswered.',
      registers: [registry],
    });
    this.lostTotal = new Counter({
      name: 'hearth_session_lost_total',
      help: 'Sessions that reached lost.',
      registers: [registry],
    });
    for (const s of STATES) this.stateGauge.set({ state: s }, 0);
    this.up.set(0);
  }

  /** The newest session moved to `state` (`closed`: every state gauge 0). */
  state(state: SessionState): void {
    for (const s of STATES) this.stateGauge.set({ state: s }, s === state ? 1 : 0);
    this.up.set(state === 'held' || state === 'jeopardy' ? 1 : 0);
    if (state === 'lost') this.lostTotal.inc();
  }

  keepaliveAnswered(rttMs: number): void {
    this.rtt.observe(rttMs / 1_000);
  }

  keepaliveFailed(): void {
    this.failures.inc();
  }
}
