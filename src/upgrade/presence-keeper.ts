import { AbortedError, isRetryable } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { CheckResult } from '../ops/health.js';
import { type ProtocolSupport, ProtocolMismatchError } from '../protocol.js';
import { startProblems } from './policy.js';
import type { PresenceRecord, SchemaState } from './records.js';
import type { Presence, UpgradeRegistry } from './registry.js';

/** What a {@link PresenceKeeper} needs. */
export interface PresenceKeeperOptions {
  readonly registry: UpgradeRegistry;
  /** What this process announces. */
  readonly record: PresenceRecord;
  readonly own: ProtocolSupport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/** Announcing again after a lost race with a finalize is tried this often before giving up. */
const MAX_ANNOUNCE_RACES = 5;

/**
 * Keeps this process's presence: the start-up check (the cluster's schema is within this
 * build's range and no live process is more than one release away), the announcement made
 * atomically with it, and a new announcement — checked again — whenever the presence's lease is
 * lost (etcd was out of reach for a TTL).
 *
 * Failure semantics: `start` throws `ProtocolMismatchError` naming what is wrong (the process
 * must not start), a retryable `BackendUnavailableError` when the store cannot be reached.
 * After start, a lost presence is announced again with the `retry` waits; if the cluster moved
 * beyond this build meanwhile (it was finalized while this process was cut off), the keeper
 * stops and {@link liveness} fails, so the process is restarted and refuses to start with the
 * message (nothing is written meanwhile: the record codec refuses too).
 */
export class PresenceKeeper {
  private current: Presence | undefined;
  private fatal: string | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: PresenceKeeperOptions) {}

  /** This process's presence now (undefined while it is being announced again). */
  get presence(): Presence | undefined {
    return this.current;
  }

  /** Checks, announces and starts keeping the presence. Resolves with the schema it checked. */
  async start(signal?: AbortSignal): Promise<SchemaState> {
    const { presence, schema } = await this.announceChecked(signal);
    this.current = presence;
    this.loop = this.keep(presence);
    return schema;
  }

  /** `/livez`: fails once the cluster has moved beyond this build. */
  liveness(): CheckResult {
    return this.fatal === undefined ? { ok: true } : { ok: false, detail: this.fatal };
  }

  /** Revokes the presence (peers stop counting this process at once). Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    await this.current?.close();
  }

  private async announceChecked(signal?: AbortSignal): Promise<{ presence: Presence; schema: SchemaState }> {
    const { registry, record, own } = this.options;
    for (let race = 1; race <= MAX_ANNOUNCE_RACES; race++) {
      const schema = await registry.schema(own.schema.min, signal);
      const { processes } = await registry.snapshot(signal);
      const problems = startProblems(own, record.build, schema, processes);
      if (problems.length > 0) throw new ProtocolMismatchError(`hearth ${record.build} cannot run on this cluster: ${problems.join('; ')}`);
      const result = await registry.announce(record, schema, signal);
      if (result.ok) return { presence: result.presence, schema };
      this.options.logger.info({ race }, 'the record schema changed while this process announced itself; checking again');
    }
    throw new ProtocolMismatchError('the record schema kept changing while this process announced itself');
  }

  /** Announces again each time the presence is lost, until closed or the cluster moved on. */
  private async keep(first: Presence): Promise<void> {
    let presence = first;
    const signal = this.stop.signal;
    while (!signal.aborted) {
      await new Promise<void>((resolve) => {
        if (presence.signal.aborted || signal.aborted) return resolve();
        const done = (): void => resolve();
        presence.signal.addEventListener('abort', done, { once: true });
        signal.addEventListener('abort', done, { once: true });
      });
      if (signal.aborted) return;
      this.current = undefined;
      this.options.logger.warn('the presence of this process was lost (etcd out of reach for a lease TTL); announcing it again');
      for (let failures = 1; !signal.aborted; failures++) {
        try {
          presence = (await this.announceChecked(signal)).presence;
          this.current = presence;
          this.options.logger.info({ id: presence.id }, 'presence announced again');
          break;
        } catch (err) {
          if (err instanceof AbortedError || signal.aborted) return;
          if (!isRetryable(err)) {
            this.fatal = err instanceof Error ? err.message.slice(0, 300) : String(err);
            this.options.logger.fatal({ err }, 'this process can no longer run on the cluster; restart it on a release that supports the cluster’s schema');
            return;
          }
          this.options.logger.warn({ err, failures }, 'announcing the presence again failed; retrying');
          if (!(await this.options.retry.wait(failures, this.options.clock, signal))) return;
        }
      }
    }
  }
}
