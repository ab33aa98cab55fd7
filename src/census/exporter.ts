/**
 * Which member exports the census: the oldest live one — the alive entry with the lowest create
 * revision, across the whole key prefix (the census counts every cluster under it). Every
 * worker follows the membership watch it already has; when it becomes the oldest it starts the
 * census (on etcd: one list, then a watch), when it is no longer the oldest it stops and
 * forgets. No key is written for this: membership already orders the members. On a single node
 * the one member exports.
 *
 * Failure semantics: while the watch is down nothing changes hands; a member that dies leaves
 * the oldest role to the next as soon as its alive entry goes. For a moment around a hand-over
 * two members, or none, may export: alert rules aggregate with `max` and use `for:`.
 */
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { Census } from './census.js';
import type { CensusMetrics } from './metrics.js';

/** What a {@link CensusExporter} needs. */
export interface CensusExporterOptions {
  readonly membership: Pick<Membership, 'watch'>;
  /** This process's member now: its host and alive revision; none between incarnations. */
  readonly self: () => { readonly host: string; readonly aliveRevision: string } | undefined;
  readonly open: () => Census;
  readonly metrics: CensusMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/** The oldest of `alive` (lowest alive revision, then host), or undefined when none. */
export function oldestMember(alive: Iterable<{ readonly host: string; readonly aliveRevision: string }>): string | undefined {
  let best: { host: string; rev: bigint } | undefined;
  for (const m of alive) {
    const rev = BigInt(m.aliveRevision);
    if (!best || rev < best.rev || (rev === best.rev && m.host < best.host)) best = { host: m.host, rev };
  }
  return best?.host;
}

/** See the module doc. */
export class CensusExporter {
  private readonly stop = new AbortController();
  private readonly alive = new Map<string, string>();
  private census: { readonly census: Census; readonly controller: AbortController } | undefined;
  private loop: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: CensusExporterOptions) {}

  /** Follows the membership watch in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Re-decides now (the incarnation changed). */
  reconsider(): void {
    this.enqueue();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    await this.chain;
    await this.stopCensus();
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    for (let failures = 0; !signal.aborted; ) {
      try {
        for await (const event of this.options.membership.watch(signal)) {
          failures = 0;
          if (event.type === 'members-synced') {
            this.alive.clear();
            for (const m of event.members) this.alive.set(m.host, m.aliveRevision);
          } else if (event.type === 'member-joined') this.alive.set(event.member.host, event.member.aliveRevision);
          else if (event.type === 'member-left') {
            if (this.alive.get(event.member.host) === event.member.aliveRevision) this.alive.delete(event.member.host);
          } else continue;
          this.enqueue();
        }
      } catch (err) {
        this.options.logger.warn({ err }, 'the census exporter lost the membership watch; watching again');
      }
      await this.options.retry.wait(++failures, this.options.clock, signal);
    }
  }

  private enqueue(): void {
    this.chain = this.chain.then(() => this.decide()).catch((err: unknown) => this.options.logger.warn({ err }, 'the census exporter failed to hand over'));
  }

  private async decide(): Promise<void> {
    const self = this.options.self();
    const oldest = oldestMember([...this.alive].map(([host, aliveRevision]) => ({ host, aliveRevision })));
    const mine = !this.stop.signal.aborted && self !== undefined && oldest === self.host && this.alive.get(self.host) === self.aliveRevision;
    if (mine && !this.census) {
      const census = this.options.open();
      const controller = new AbortController();
      this.census = { census, controller };
      await census.start(AbortSignal.any([controller.signal, this.stop.signal]));
      this.options.metrics.follow(census);
      this.options.logger.info('this member is the oldest alive: it exports the census (hearth_resources)');
    } else if (!mine && this.census) {
      await this.stopCensus();
      this.options.logger.info({ oldest }, 'another member is the oldest alive now: it exports the census');
    }
  }

  private async stopCensus(): Promise<void> {
    const current = this.census;
    this.census = undefined;
    this.options.metrics.follow(undefined);
    if (!current) return;
    current.controller.abort();
    await current.census.close();
  }
}
